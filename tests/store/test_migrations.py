"""Alembic owns the schema: migrations produce exactly the ORM's tables, on either store
(``--store=postgresql`` runs them on a real PostgreSQL database)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine as open_engine

from visage.store.db import open_store
from visage.store.schema import Base, Meta, SubjectRow


def test_migrations_match_models(tmp_path: Path, store_url: str | None) -> None:
    store = open_store(tmp_path, create=True, url=store_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    store.close()


def test_migrate_is_idempotent_and_pragmas_are_set(tmp_path: Path, store_url: str | None) -> None:
    open_store(tmp_path, create=True, url=store_url).close()
    store = open_store(tmp_path, create=False, url=store_url)
    with store.engine.connect() as conn:
        if store.is_sqlite:
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        else:  # PostgreSQL: no pragmas; the pool's connections are psycopg 3's
            assert store.engine.dialect.driver == "psycopg"
            assert conn.exec_driver_sql("SHOW server_version_num").scalar_one() >= "150000"
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").one()
    store.close()
    assert tuple(version) == (_head(),)


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


def test_the_safeguards_migration_downgrades_and_upgrades_again(
    tmp_path: Path, store_url: str | None
) -> None:
    from alembic import command
    from alembic.config import Config

    from visage.store.db import _MIGRATIONS

    store = open_store(tmp_path, create=True, url=store_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")  # 0003 and older do not downgrade
    store.close()
    store = open_store(tmp_path, create=True, url=store_url)
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    store.close()


def test_consent_token_triggers_come_and_go_with_their_migration(
    tmp_path: Path, store_url: str | None
) -> None:
    from alembic import command
    from alembic.config import Config

    from visage.store.db import _MIGRATIONS

    def triggers() -> set[str]:
        if store_url is None:
            with sqlite3.connect(tmp_path / "visage.db") as db:
                rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                return {name for (name,) in rows}
        with open_engine(store_url).connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            ).all()
        return {name for (name,) in rows}

    store = open_store(tmp_path, create=True, url=store_url)
    expected = (
        {f"{t}_{e}_stamp" for t in ("subjects", "consents") for e in ("insert", "update", "delete")}
        if store_url is None
        else {"subjects_stamp", "consents_stamp"}  # one PL/pgSQL function, per statement
    )
    assert triggers() == expected
    with store.session() as session:
        before = session.get(Meta, "consent_token")
        assert before is not None
        token = before.value
        session.add(SubjectRow(id="s" * 32, name="x", created_at=datetime.now(UTC)))
    with store.session() as session:
        after = session.get(Meta, "consent_token")
        assert after is not None and len(after.value) == 16 and after.value != token
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert triggers() == set()
    store.close()
    open_store(tmp_path, create=False, url=store_url).close()  # upgrades again
    assert triggers() == expected


def test_old_model_migration_progress_rows_are_forgotten(
    tmp_path: Path, store_url: str | None
) -> None:
    """Older versions kept ``models migrate`` progress as subject ids in ``meta`` rows that
    erasure never touched: upgrading removes them and leaves every other ``meta`` row."""
    from alembic import command
    from alembic.config import Config

    from visage.store.db import _MIGRATIONS

    store = open_store(tmp_path, create=True, url=store_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    erased_subject = "e" * 32
    with store.session() as session:
        kept = {m.key for m in session.query(Meta)}
        session.add(
            Meta(key="model_migration:sface-2021dec", value=f'["{erased_subject}"]'.encode())
        )
    store.close()
    store = open_store(tmp_path, create=True, url=store_url)
    with store.session() as session:
        rows = list(session.query(Meta))
    assert {m.key for m in rows} == kept
    assert not any(erased_subject.encode() in m.value for m in rows)
    store.close()
