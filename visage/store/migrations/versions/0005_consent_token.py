"""Triggers that stamp every change of subjects or consents with a new random token.

The token (``meta['consent_token']``) lets a process cache who may be matched for a purpose
and know, with one read, whether any process has changed a subject or a consent since. The
database writes it, so no write path (ORM, raw SQL, another process) can forget to.

SQLite: one trigger per table and event. PostgreSQL: one PL/pgSQL trigger function, run once
per statement on each table (the token only has to change, not count the rows).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("subjects", "consents")
_EVENTS = ("INSERT", "UPDATE", "DELETE")
_STAMP = (
    "INSERT INTO meta (key, value) VALUES ('consent_token', randomblob(16)) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)
_PG_STAMP = (  # 16 random bytes from the core gen_random_uuid() (no extension needed)
    "INSERT INTO meta (key, value) VALUES ('consent_token', uuid_send(gen_random_uuid())) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)
_PG_FUNCTION = "visage_stamp_consent_token"


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        op.execute(
            f"CREATE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_PG_STAMP}; RETURN NULL; END $$"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_stamp AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
        op.execute(_PG_STAMP)
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_stamp AFTER {event} ON {table} "
                f"BEGIN {_STAMP}; END"
            )
    op.execute(_STAMP)


def downgrade() -> None:
    if _postgresql():
        for table in _TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_stamp ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")
        op.execute("DELETE FROM meta WHERE key = 'consent_token'")
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{event.lower()}_stamp")
    op.execute("DELETE FROM meta WHERE key = 'consent_token'")
