"""Triggers that stamp every change of subjects or consents with a new random token.

The token (``meta['consent_token']``) lets a process cache who may be matched for a purpose
and know, with one read, whether any process has changed a subject or a consent since. The
database writes it, so no write path (ORM, raw SQL, another process) can forget to.

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


def upgrade() -> None:
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_stamp AFTER {event} ON {table} "
                f"BEGIN {_STAMP}; END"
            )
    op.execute(_STAMP)


def downgrade() -> None:
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{event.lower()}_stamp")
    op.execute("DELETE FROM meta WHERE key = 'consent_token'")
