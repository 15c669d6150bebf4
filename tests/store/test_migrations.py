"""Alembic owns the schema: migrations produce exactly the ORM's tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from visage.store.db import open_store
from visage.store.schema import Base


def test_migrations_match_models(tmp_path: Path) -> None:
    store = open_store(tmp_path, create=True)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    store.close()


def test_migrate_is_idempotent_and_pragmas_are_set(tmp_path: Path) -> None:
    open_store(tmp_path, create=True).close()
    store = open_store(tmp_path, create=False)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.close()
    with sqlite3.connect(tmp_path / "visage.db") as db:
        version = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == (_head(),)


def _head() -> str:
    """The newest revision of the migration scripts (not a number written here)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from visage.store.db import _MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_the_safeguards_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from visage.store.db import _MIGRATIONS

    store = open_store(tmp_path, create=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")  # 0003 and older do not downgrade
    store.close()
    store = open_store(tmp_path, create=True)
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    store.close()


def test_consent_token_triggers_come_and_go_with_their_migration(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from visage.store.db import _MIGRATIONS

    def triggers() -> set[str]:
        with sqlite3.connect(tmp_path / "visage.db") as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            return {name for (name,) in rows}

    store = open_store(tmp_path, create=True)
    assert triggers() == {
        f"{table}_{event}_stamp"
        for table in ("subjects", "consents")
        for event in ("insert", "update", "delete")
    }
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert triggers() == set()
    store.close()
    open_store(tmp_path, create=False).close()  # upgrades again
    assert len(triggers()) == 6
