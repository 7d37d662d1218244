"""claim ids are never reused (SQLite AUTOINCREMENT)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:45:00

Written by hand: on SQLite the claim table is rebuilt with AUTOINCREMENT (foreign keys are
off during migrations, and tracker.db.migrate restores the full-text triggers after the
rebuild). PostgreSQL sequences never reuse ids: nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "claim", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "claim", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
