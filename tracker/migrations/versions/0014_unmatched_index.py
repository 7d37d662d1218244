"""the claims waiting to be compared: a partial index instead of an index of matched_at

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 10:20:00

The matcher asks, round after round, for the oldest claims not compared yet
(`matched_at IS NULL ORDER BY id`). An index of every claim's `matched_at` served that only
while the planner's statistics said NULLs were few: after claims were compared in bulk
(many share one time, as after revision 0012) SQLite scanned the whole claim table each
round instead. An index of only the waiting claims' ids is small, ordered as asked, and
chosen whatever the statistics say.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = sa.text("matched_at IS NULL")


def upgrade() -> None:
    op.drop_index("ix_claim_matched_at", table_name="claim")
    op.create_index(
        "ix_claim_unmatched", "claim", ["id"], sqlite_where=_WAITING, postgresql_where=_WAITING
    )


def downgrade() -> None:
    op.drop_index("ix_claim_unmatched", table_name="claim")
    op.create_index("ix_claim_matched_at", "claim", ["matched_at"])
