"""matching after storing: when a claim was compared with earlier claims

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 07:10:00

A new claim is stored at once and compared with earlier claims of other articles in a
separate stage (tracker/matching.py `match_pending`), off the writer's path. `matched_at`
is when that was done; claims stored before this revision were compared when stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("claim", sa.Column("matched_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE claim SET matched_at = created_at")
    op.create_index("ix_claim_matched_at", "claim", ["matched_at"])


def downgrade() -> None:
    op.drop_index("ix_claim_matched_at", table_name="claim")
    with op.batch_alter_table("claim", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("matched_at")
