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

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, Table, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from visage.errors import NotInitialisedError, VisageError
from visage.masking import mask_url

DB_FILE = "visage.db"
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


def lock_key(name: str) -> int:
    """The PostgreSQL advisory-lock key of a named critical section: a stable signed 64-bit
    number (the same in every process and version), in Visage's own key space."""
    digest = hashlib.blake2b(f"visage:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class ScrubResult:
    """What :meth:`Store.scrub` achieved, as SQLite reported it (never assumed)."""

    secure_delete: bool
    """``PRAGMA secure_delete`` is on for the store's connections (freed content zeroed)."""
    busy: bool
    """The last checkpoint was blocked by a reader or writer of another connection."""
    log_frames: int
    """Frames in the write-ahead log when the last checkpoint ran."""
    checkpointed_frames: int
    """Of those, frames copied back into the database file."""
    wal_bytes: int
    """Size of ``visage.db-wal`` afterwards (0 when it was truncated, or absent)."""
    attempts: int

    @property
    def wal_truncated(self) -> bool:
        """Every old page image is gone from the log: it was checkpointed and cut to 0."""
        return not self.busy and self.wal_bytes == 0

    @property
    def complete(self) -> bool:
        return self.secure_delete and self.wal_truncated


class Store:
    """Owns the engine and hands out sessions (one unit of work each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine: Engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

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
        if self.path.is_file() and self.at_head():
            return False
        from alembic import command  # about 0.2 s of imports, needed only to upgrade
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with _MIGRATE_LOCK, self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return True

    def is_initialised(self) -> bool:
        return self.path.is_file() and inspect(self.engine).has_table("subjects")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @property
    def wal_path(self) -> Path:
        return self.path.with_name(self.path.name + "-wal")

    def scrub(self, attempts: int = 4, pause_s: float = 0.05) -> ScrubResult:
        """Copy the write-ahead log into the database and cut it to zero bytes, so that old
        page images (with deleted rows in them) do not linger in ``visage.db-wal``.

        ``PRAGMA wal_checkpoint(TRUNCATE)`` cannot finish while another connection reads an
        older snapshot: it then reports ``busy`` (and the log keeps its frames). The
        checkpoint is retried ``attempts`` times with growing pauses; the result says what
        really happened, so that a caller never claims a truncation that did not occur.
        """
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

    def close(self) -> None:
        self.engine.dispose()


def open_store(home: Path, *, create: bool) -> Store:
    path = home / DB_FILE
    if not create and not path.is_file():
        raise NotInitialisedError(f"no Visage data in {home}; initialise the data directory first")
    home.mkdir(parents=True, exist_ok=True)
    store = Store(path)
    store.migrate()  # also upgrades a data dir written by an older version
    return store
