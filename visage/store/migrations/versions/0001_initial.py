"""Initial schema: subjects, consent records, encrypted templates, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(32),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.String(64), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_consents_subject_id", "consents", ["subject_id"])
    op.create_table(
        "templates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(32),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_templates_subject_id", "templates", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_templates_subject_id", "templates")
    op.drop_table("templates")
    op.drop_index("ix_consents_subject_id", "consents")
    op.drop_table("consents")
    op.drop_table("subjects")
    op.drop_table("meta")
