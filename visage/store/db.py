"""The embedded store: one SQLite file in the data directory, migrated by Alembic.

SQLite runs with foreign keys on, WAL journaling, and ``secure_delete`` so that deleted
rows (templates, names) are overwritten rather than left in free pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from visage.errors import VisageError

DB_FILE = "visage.db"
_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """Owns the engine and hands out sessions (one unit of work each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine: Engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def is_initialised(self) -> bool:
        return self.path.is_file() and inspect(self.engine).has_table("subjects")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def truncate_wal(self) -> None:
        """Copy the write-ahead log into the database and cut it to zero bytes, so that old
        page images (with deleted rows in them) do not linger in ``visage.db-wal``."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.engine.dispose()


def open_store(home: Path, *, create: bool) -> Store:
    path = home / DB_FILE
    if not create and not path.is_file():
        raise VisageError(f"no Visage data in {home}; run `visage init` first")
    home.mkdir(parents=True, exist_ok=True)
    store = Store(path)
    store.migrate()  # also upgrades a data dir written by an older version
    return store
