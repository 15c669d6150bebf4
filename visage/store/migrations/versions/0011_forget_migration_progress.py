"""Forget the progress lists of ``visage models migrate`` that older versions kept.

Versions before this revision recorded each model migration's progress as a ``meta`` row
``model_migration:<model id>`` holding the ids of the subjects already migrated. Progress
is now read from the templates table itself, so those rows are unused; and since nothing
removed a subject's id from them, an erased subject's id could outlive the erasure there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM meta WHERE key LIKE 'model_migration:%'"))


def downgrade() -> None:
    """Nothing to restore: the rows were unused."""
