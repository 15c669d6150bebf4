"""Schema for the safeguards of issue 11, in one revision.

* ``api_keys.owner`` — the named person a key belongs to (two confirmations of a review
  must come from two different owners, and never from the owner who asked);
* ``reviews.requested_by`` / ``requester_owner`` — who asked for the 1:N search that
  queued the item (they may read its outcome once released, but never review it);
* ``audit_purges`` — signed markers "entries before N purged on D under rule R";
* ``cameras.source_sealed`` — the camera URL sealed under the master key (``source`` keeps
  only a masked form for display);
* ``erasure_intents`` — an erasure is recorded here *before* the subject's key is
  destroyed; only such an erasure may be finished after a crash;
* ``subjects.name_sealed`` / ``name_index`` and ``consents.reference_sealed`` /
  ``reference_index`` — names and consent references sealed under the subject's data key,
  with a keyed blind index for exact look-ups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("owner", sa.String(200), nullable=False, server_default=""))
    op.add_column("reviews", sa.Column("requested_by", sa.String(64), nullable=True))
    op.add_column("reviews", sa.Column("requester_owner", sa.String(200), nullable=True))
    op.create_table(
        "audit_purges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("before_seq", sa.Integer(), nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
    )
    op.add_column("cameras", sa.Column("source_sealed", sa.LargeBinary(), nullable=True))
    op.create_table(
        "erasure_intents",
        sa.Column("subject_id", sa.String(32), primary_key=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
    )
    op.add_column("subjects", sa.Column("name_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("subjects", sa.Column("name_index", sa.String(64), nullable=True))
    op.create_index("ix_subjects_name_index", "subjects", ["name_index"])
    op.add_column("consents", sa.Column("reference_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("consents", sa.Column("reference_index", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as b:
        b.drop_column("reference_index")
        b.drop_column("reference_sealed")
    op.drop_index("ix_subjects_name_index", "subjects")
    with op.batch_alter_table("subjects") as b:
        b.drop_column("name_index")
        b.drop_column("name_sealed")
    op.drop_table("erasure_intents")
    with op.batch_alter_table("cameras") as b:
        b.drop_column("source_sealed")
    op.drop_table("audit_purges")
    with op.batch_alter_table("reviews") as b:
        b.drop_column("requester_owner")
        b.drop_column("requested_by")
    with op.batch_alter_table("api_keys") as b:
        b.drop_column("owner")
