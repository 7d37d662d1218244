"""article lease: who is extracting an article, until when

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 04:00:00

Two imports at once must not extract (and pay for) the same article twice: a run takes the
article's lease before the model call (tracker/lease.py). The next issue's worker queue
selects pending articles whose lease is free with SELECT ... FOR UPDATE SKIP LOCKED.
Self-contained: only adds two nullable columns and an index, so it can be re-chained after
any other revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_article_lease_expires_at", ["lease_expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index("ix_article_lease_expires_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
