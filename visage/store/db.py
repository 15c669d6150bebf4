"""The store: the SQLite file in the data directory by default, or a shared PostgreSQL
database (``database_url``), migrated by the same Alembic migrations.

SQLite runs with foreign keys on, WAL journaling, and ``secure_delete`` so that deleted
rows (templates, names) are overwritten rather than left in free pages. A deletion that must
keep its word (erasure, consent withdrawal, template deletion, review rejection) ends with
:meth:`Store.scrub`, which also removes the old page images from the write-ahead log.

PostgreSQL (psycopg 3, SQLAlchemy's connection pool) keeps deleted rows as dead tuples until
``VACUUM``, and even then does not overwrite their bytes: :meth:`Store.scrub` runs
``VACUUM`` on the tables and reports what it achieved, and the erasure certificate says
exactly that (see :mod:`visage.governance.erasure`). Crypto-shredding is what makes an
erasure final on either engine: the sealed templates left anywhere are unreadable once the
subject's data key is destroyed.

Everything that differs between the two engines lives in this module: the engine options,
:meth:`Store.serialise` (cross-process critical sections), :meth:`Store.scrub`, and
:meth:`Store.newest_first`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from visage.errors import InputError, NotInitialisedError, VisageError
from visage.masking import mask_url
from visage.store import DB_FILE as DB_FILE  # its home: see there

_MIGRATIONS = Path(__file__).parent / "migrations"
_BUSY_TIMEOUT_MS = 10000
_MIGRATE_LOCK = threading.Lock()
"""Alembic keeps its migration context in module globals: one migration at a time per
process (two apps opening their stores at once would otherwise trip over each other).
Across processes on PostgreSQL, :meth:`Store.migrate` also takes an advisory lock."""
_SCRUB_BUSY_TIMEOUT_MS = 100
"""How long one checkpoint waits for readers: short, because :meth:`Store.scrub` retries."""
PG_POOL_SIZE = 5
PG_MAX_OVERFLOW = 10


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cur.close()


@functools.cache
def head_revision() -> str:
    """The newest revision of the migration scripts, read from the scripts themselves
    (``revision``/``down_revision`` lines) without importing Alembic: the one revision that
    no other script revises."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in (_MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text()
        if found := re.search(r'^revision(?:: str)? = "([^"]+)"', source, re.MULTILINE):
            revisions.add(found[1])
        if found := re.search(r'^down_revision(?:: [^=]+)? = "([^"]+)"', source, re.MULTILINE):
            revised.add(found[1])
    heads = revisions - revised
    if len(heads) != 1:
        raise VisageError(f"the migration scripts have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def lock_key(name: str) -> int:
    """The PostgreSQL advisory-lock key of a named critical section: a stable signed 64-bit
    number (the same in every process and version), in Visage's own key space."""
    digest = hashlib.blake2b(f"visage:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def upgrade(conn: Connection) -> None:
    """Bring the schema of ``conn``'s database to the newest revision, inside ``conn``'s
    transaction (on PostgreSQL, DDL is transactional: a rollback leaves nothing behind)."""
    from alembic import command  # about 0.2 s of imports, needed only to upgrade
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with _MIGRATE_LOCK:
        if conn.dialect.name == "postgresql":  # replicas starting together migrate in turn
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("migrate")})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass(frozen=True)
class ScrubResult:
    """What :meth:`Store.scrub` achieved, as the engine reported it (never assumed)."""

    secure_delete: bool
    """SQLite: ``PRAGMA secure_delete`` is on for the store's connections (freed content
    zeroed). Always False on PostgreSQL, which has no such setting."""
    busy: bool
    """SQLite: the last checkpoint was blocked by a reader or writer of another connection.
    PostgreSQL: after the last ``VACUUM`` dead row versions were still left (an open
    transaction could still see them)."""
    log_frames: int
    """Frames in the write-ahead log when the last checkpoint ran (SQLite)."""
    checkpointed_frames: int
    """Of those, frames copied back into the database file (SQLite)."""
    wal_bytes: int
    """Size of ``visage.db-wal`` afterwards (0 when it was truncated, or absent) (SQLite)."""
    attempts: int
    engine: str = "sqlite"
    """``sqlite`` or ``postgresql``: which of the fields above apply."""
    vacuumed: tuple[str, ...] = ()
    """PostgreSQL: the tables ``VACUUM`` ran on."""
    dead_tuples: int = 0
    """PostgreSQL: dead row versions ``VACUUM`` could not remove in those tables."""

    @property
    def postgresql(self) -> bool:
        return self.engine == "postgresql"

    @property
    def wal_truncated(self) -> bool:
        """SQLite: every old page image is gone from the log (checkpointed and cut to 0).
        Always False on PostgreSQL: its write-ahead log is not Visage's to truncate."""
        return not self.postgresql and not self.busy and self.wal_bytes == 0

    @property
    def complete(self) -> bool:
        """Every step this engine allows was done: on SQLite, secure_delete on and the log
        truncated; on PostgreSQL, VACUUM ran and removed every dead row version (which does
        not overwrite their bytes: the certificate says so)."""
        if self.postgresql:
            return bool(self.vacuumed) and not self.busy
        return self.secure_delete and self.wal_truncated


def _refuse_nul_text(
    conn: object,
    cursor: object,
    statement: str,
    parameters: object,
    context: object,
    executemany: bool,
) -> None:
    """Refuses a text value holding a NUL character (``\\x00``) before it reaches the
    database, on both stores alike: PostgreSQL cannot store one in a text column (it failed
    as a 500: a key named ``"\\u0000"``), and SQLite would keep a name that cuts short in
    any C string. Whichever door the text came through, the caller gets an input error."""
    rows = parameters if executemany and isinstance(parameters, Sequence) else [parameters]
    for row in rows:
        if isinstance(row, Mapping):
            values: Iterable[object] = row.values()
        elif isinstance(row, Sequence) and not isinstance(row, str):
            values = row
        else:
            continue
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise InputError("text may not contain a NUL character (\\x00)")


class Store:
    """Owns the engine and hands out sessions (one unit of work each).

    ``Store(path)`` opens the SQLite file ``path``; ``Store(url=...)`` any SQLAlchemy URL
    (``postgresql+psycopg://…`` for PostgreSQL).
    """

    def __init__(self, path: Path | None = None, *, url: str | None = None) -> None:
        if (path is None) == (url is None):
            raise ValueError("Store needs a SQLite path or a URL, not both")
        if url is None:
            assert path is not None
            url = f"sqlite:///{path}"
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.path: Path | None = None
        """The SQLite file (None on PostgreSQL)."""
        if self.dialect == "sqlite":
            self.path = Path(parsed.database or "")
            self.engine: Engine = create_engine(url)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.dialect == "postgresql":
            if parsed.get_driver_name() != "psycopg":
                parsed = parsed.set(drivername="postgresql+psycopg")
            self.engine = create_engine(
                parsed,
                pool_size=PG_POOL_SIZE,
                max_overflow=PG_MAX_OVERFLOW,
                pool_pre_ping=True,
                connect_args={"application_name": "visage"},
            )
        else:
            raise VisageError(f"unsupported store engine {self.dialect!r}")
        event.listen(self.engine, "before_cursor_execute", _refuse_nul_text)
        self.url = mask_url(parsed.render_as_string(hide_password=False))
        """Where the store is, password masked (for messages and reports)."""
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def revision(self) -> str | None:
        """The schema's revision as Alembic recorded it; None for a database without one."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if found is None else str(found)

    def at_head(self) -> bool:
        return self.revision() == head_revision()

    def migrate(self) -> bool:
        """Bring the schema to the newest revision (idempotent). Alembic is imported and run
        only when the schema is not at head already; returns whether it ran."""
        if (self.path is None or self.path.is_file()) and self.at_head():
            return False
        with self.engine.begin() as conn:
            upgrade(conn)
        return True

    def is_initialised(self) -> bool:
        if self.path is not None and not self.path.is_file():
            return False
        return inspect(self.engine).has_table("subjects")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @staticmethod
    def serialise(session: Session, name: str) -> None:
        """Enter the critical section ``name`` for the rest of ``session``'s transaction:
        one transaction at a time, across threads and processes (replicas), holds it. Used
        where a read decides a write (the audit chain's head, a review decision, an erasure's
        re-check), so the read must come after this call.

        SQLite: a no-op write takes the database's one write lock (every section is that
        lock). PostgreSQL: ``pg_advisory_xact_lock`` on the name's key, released at commit
        or rollback; a section's later reads see every commit made before it was entered
        (READ COMMITTED takes a new snapshot per statement).
        """
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})
        else:
            session.execute(text("UPDATE meta SET key = key WHERE 0"))

    @staticmethod
    def newest_first(session: Session, table: Any, created: Any) -> list[Any]:
        """ORDER BY terms for "newest first in insertion order" of ``table`` (a Table):
        SQLite's rowid (walked without a sort), else the column ``created``, then the
        primary key."""
        if session.get_bind().dialect.name == "sqlite":
            return [text(f"{table.name}.rowid DESC")]
        return [created.desc(), *(c.desc() for c in table.primary_key.columns)]

    @staticmethod
    def insert_new(session: Session, table: Any) -> Any:
        """``INSERT`` into ``table`` that does nothing where the row's key already exists
        (``ON CONFLICT DO NOTHING``, in the session's dialect)."""
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    @property
    def wal_path(self) -> Path:
        if self.path is None:
            raise VisageError("a PostgreSQL store has no write-ahead log file of Visage's")
        return self.path.with_name(self.path.name + "-wal")

    def scrub(self, attempts: int = 4, pause_s: float = 0.05) -> ScrubResult:
        """After deleting what must be gone, leave as little of it in storage as the engine
        allows, and report what really happened.

        SQLite: copy the write-ahead log into the database and cut it to zero bytes, so that
        old page images (with deleted rows in them) do not linger in ``visage.db-wal``.
        ``PRAGMA wal_checkpoint(TRUNCATE)`` cannot finish while another connection reads an
        older snapshot: it then reports ``busy`` (and the log keeps its frames). The
        checkpoint is retried ``attempts`` times with growing pauses; the result says what
        really happened, so that a caller never claims a truncation that did not occur.

        PostgreSQL: see :meth:`_vacuum`.
        """
        if self.is_postgresql:
            return self._vacuum(attempts, pause_s)
        wal = self.wal_path
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            secure = raw.execute("PRAGMA secure_delete").fetchone()[0] == 1
            raw.execute(f"PRAGMA busy_timeout={_SCRUB_BUSY_TIMEOUT_MS}")
            try:
                for attempt in range(1, attempts + 1):
                    busy, log, done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    size = wal.stat().st_size if wal.exists() else 0
                    if not busy and size == 0:
                        break
                    if attempt < attempts:
                        time.sleep(pause_s * 2 ** (attempt - 1))
            finally:
                raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        return ScrubResult(
            secure_delete=secure,
            busy=bool(busy),
            log_frames=max(int(log), 0),
            checkpointed_frames=max(int(done), 0),
            wal_bytes=size,
            attempts=attempt,
        )

    def _vacuum(self, attempts: int, pause_s: float) -> ScrubResult:
        """``VACUUM`` Visage's tables (outside a transaction: VACUUM refuses to run in one,
        hence the autocommit connection), then ask the statistics how many dead row versions
        it had to leave: those an open transaction may still see. Retried like the SQLite
        checkpoint. VACUUM makes the space of dead rows reusable; it does not overwrite it,
        and PostgreSQL's own write-ahead log (and any archive or replica of it) keeps the
        old rows until it is recycled. The result claims no more than that."""
        from visage.store.schema import Base  # the tables Visage owns

        tables = tuple(t.name for t in Base.metadata.sorted_tables)
        names = ", ".join(f'"{t}"' for t in tables)
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for attempt in range(1, attempts + 1):
                conn.execute(text(f"VACUUM {names}"))
                dead = conn.execute(
                    text(
                        "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables "
                        "WHERE relname = ANY(:t) AND schemaname = current_schema()"
                    ),
                    {"t": list(tables)},
                ).scalar_one()
                if not dead:
                    break
                if attempt < attempts:
                    time.sleep(pause_s * 2 ** (attempt - 1))
        return ScrubResult(
            secure_delete=False,
            busy=bool(dead),
            log_frames=0,
            checkpointed_frames=0,
            wal_bytes=0,
            attempts=attempt,
            engine="postgresql",
            vacuumed=tables,
            dead_tuples=int(dead),
        )

    def close(self) -> None:
        self.engine.dispose()


def open_store(home: Path, *, create: bool, url: str | None = None) -> Store:
    """The migrated store of the data dir ``home``: its SQLite file, or the database at
    ``url`` (``database_url``). ``create``: make it when absent (``visage init``)."""
    if url is None:
        path = home / DB_FILE
        if not create and not path.is_file():
            raise NotInitialisedError(
                f"no Visage data in {home}; initialise the data directory first"
            )
        home.mkdir(parents=True, exist_ok=True)
        store = Store(path)
    else:
        store = Store(url=url)
    try:
        if not create and not store.is_initialised():
            raise NotInitialisedError(
                f"no Visage data in {store.url}; initialise it first (visage init)"
            )
        store.migrate()  # also upgrades a store written by an older version
    except OperationalError as exc:
        store.close()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise VisageError(f"cannot open the database at {store.url}: {reason}") from None
    except BaseException:
        store.close()
        raise
    return store
