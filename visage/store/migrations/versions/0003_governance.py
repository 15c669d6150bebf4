"""Governance: audit chain and checkpoints, events, reviews; subject keys leave the database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Subjects' wrapped data keys move from ``subjects.wrapped_key`` to one file each under
``keys/`` beside the database (see visage.store.keyring), so that a database backup no longer
holds the keys that erasure must destroy.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _move_keys_out() -> None:
    bind = op.get_bind()
    db = bind.engine.url.database
    rows = bind.execute(sa.text("SELECT id, wrapped_key FROM subjects")).all()
    if rows and bind.dialect.name != "sqlite":  # no PostgreSQL store predates this revision
        raise RuntimeError("0003 moves keys beside a SQLite file; migrate-store from SQLite")
    if rows and db:
        keys = Path(db).parent / "keys"
        keys.mkdir(mode=0o700, exist_ok=True)
        for subject_id, wrapped in rows:
            fd = os.open(keys / f"{subject_id}.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, wrapped)
                os.fsync(fd)
            finally:
                os.close(fd)
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("wrapped_key")


def upgrade() -> None:
    _move_keys_out()
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False, index=True),
        sa.Column("purpose", sa.String(64), nullable=True),
        sa.Column("subject_id", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(32),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("camera", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.Column("best_score", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.String(32), nullable=True),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(32),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("camera", sa.String(64), nullable=True),
        sa.Column("probe", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "review_id",
            sa.String(32),
            sa.ForeignKey("reviews.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("review_id", "reviewer"),
    )


def downgrade() -> None:
    raise NotImplementedError("0003 moved subject keys out of the database; no way back")
