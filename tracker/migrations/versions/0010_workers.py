"""workers: who runs, since when a lease was taken

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 07:00:00

`worker` lists the extraction workers (tracker worker, the dashboard's own) with a
heartbeat, for `tracker stats` and so the dashboard knows whether one is running.
`article.leased_at` is when the current lease was taken (renewals move only its expiry).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("article", sa.Column("leased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "worker",
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    op.create_index("ix_article_state_id", "article", ["extraction_state", "id"])


def downgrade() -> None:
    op.drop_index("ix_article_state_id", table_name="article")
    op.drop_table("worker")
    with op.batch_alter_table("article") as batch:
        batch.drop_column("leased_at")
