"""the review desk: assignment, dismissal, last verdict on the claim; people by folded name

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 06:00:00

Written by hand. Claims get `assignee`, `dismissed`, `reviewed_by`, `reviewed_at` and
`review_note` (the last verdict, filled from the history already there). Reviewers get
`name_key`, the Unicode case fold of their name computed in Python (SQLite's lower() folds
ASCII only), and `role` becomes optional: no role means "as TRACKER_ADMINS and
TRACKER_DEFAULT_ROLE say", so a row can be made for everyone who acts. History gets the
indexes for reviews per day and each person's last activity.
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "'viewer', 'reviewer', 'admin'"


def _key(name: str) -> str:
    """tracker.people.person_key, frozen here as it was when this migration was written."""
    folded = unicodedata.normalize("NFKC", " ".join(name.split())).casefold()
    return unicodedata.normalize("NFKC", folded)


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: a batch rebuild on SQLite would lose the table's
    # AUTOINCREMENT (migration 0006) and cost a copy of every claim.
    op.add_column("claim", sa.Column("assignee", sa.String(), nullable=True))
    op.add_column(
        "claim", sa.Column("dismissed", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("claim", sa.Column("reviewed_by", sa.String(), nullable=True))
    op.add_column("claim", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("claim", sa.Column("review_note", sa.Text(), nullable=True))
    op.create_index("ix_claim_assignee", "claim", ["assignee"])
    op.create_index("ix_claim_dismissed", "claim", ["dismissed"])
    op.create_index("ix_claim_reviewed_by", "claim", ["reviewed_by"])

    # The last verdict of every claim reviewed so far.
    op.execute(
        """
        UPDATE claim SET
          reviewed_by = (SELECT e.actor FROM review_event e WHERE e.claim_id = claim.id
                         AND e.action = 'status' ORDER BY e.at DESC, e.id DESC LIMIT 1),
          reviewed_at = (SELECT e.at FROM review_event e WHERE e.claim_id = claim.id
                         AND e.action = 'status' ORDER BY e.at DESC, e.id DESC LIMIT 1),
          review_note = (SELECT e.note FROM review_event e WHERE e.claim_id = claim.id
                         AND e.action = 'status' ORDER BY e.at DESC, e.id DESC LIMIT 1)
        WHERE EXISTS (SELECT 1 FROM review_event e WHERE e.claim_id = claim.id
                      AND e.action = 'status')
        """
    )

    with op.batch_alter_table("reviewer") as batch:
        batch.add_column(sa.Column("name_key", sa.String(), nullable=True))
        batch.alter_column("role", existing_type=sa.String(length=16), nullable=True)
        batch.drop_constraint("reviewer_role", type_="check")
        batch.create_check_constraint("reviewer_role", f"role IS NULL OR role IN ({ROLES})")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, name FROM reviewer ORDER BY id")).all()
    seen: set[str] = set()
    for row_id, name in rows:
        key = _key(name)
        if key in seen:  # "Ana" and "ANA" were two rows: the first one stands
            bind.execute(sa.text("DELETE FROM reviewer WHERE id = :id"), {"id": row_id})
            continue
        seen.add(key)
        bind.execute(
            sa.text("UPDATE reviewer SET name_key = :key WHERE id = :id"),
            {"key": key, "id": row_id},
        )
    with op.batch_alter_table("reviewer") as batch:
        batch.alter_column("name_key", existing_type=sa.String(), nullable=False)
        batch.create_unique_constraint("uq_reviewer_name_key", ["name_key"])

    op.create_index("ix_review_event_at", "review_event", ["at"])
    op.create_index("ix_review_event_actor_at", "review_event", ["actor", "at"])


def downgrade() -> None:
    op.drop_index("ix_review_event_actor_at", table_name="review_event")
    op.drop_index("ix_review_event_at", table_name="review_event")
    op.execute("UPDATE reviewer SET role = 'reviewer' WHERE role IS NULL")
    with op.batch_alter_table("reviewer") as batch:
        batch.drop_constraint("uq_reviewer_name_key", type_="unique")
        batch.drop_column("name_key")
        batch.drop_constraint("reviewer_role", type_="check")
        batch.alter_column("role", existing_type=sa.String(length=16), nullable=False)
        batch.create_check_constraint("reviewer_role", f"role IN ({ROLES})")
    op.drop_index("ix_claim_reviewed_by", table_name="claim")
    op.drop_index("ix_claim_dismissed", table_name="claim")
    op.drop_index("ix_claim_assignee", table_name="claim")
    with op.batch_alter_table("claim", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("review_note")
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("dismissed")
        batch.drop_column("assignee")
