"""monitoring: feeds, the entries they listed, and repeat-claim alerts

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 05:00:00

`tracker watch` follows feeds (`feed`: validators for conditional GETs, back-off after
failures), records each entry once by GUID and URL (`feed_entry`, linked to the article its
page became: two outlets' entries for one wire text are two appearances of one article), and
raises an `alert` when a new claim repeats a claim with a verdict or a published fact-check,
once per article and match (`pair_key`). Only new tables, so it can be re-chained after any
other revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("outlet", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    op.create_table(
        "feed_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("guid_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("fetched_url", sa.Text(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("alerts_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'stored', 'failed')", name="feed_entry_state"),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["feed_id"], ["feed.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feed_id", "guid_key", name="feed_entry_guid"),
        sa.UniqueConstraint("url_key"),
    )
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_entry_article_id"), ["article_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feed_entry_feed_id"), ["feed_id"], unique=False)
        batch_op.create_index("ix_feed_entry_state", ["state", "feed_id"], unique=False)

    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_id", sa.Integer(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("matched_claim_id", sa.Integer(), nullable=True),
        sa.Column("fact_check_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("how", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("caution", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("claim_text", sa.Text(), nullable=False),
        sa.Column("article_title", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("article_url", sa.Text(), nullable=True),
        sa.Column("outlet", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("matched_text", sa.Text(), nullable=False),
        sa.Column("matched_source", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("matched_url", sa.Text(), nullable=True),
        sa.Column("acknowledged_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("webhook_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("webhook_error", sa.Text(), nullable=True),
        sa.Column("webhook_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('claim', 'fact_check')", name="alert_kind"),
        sa.CheckConstraint(
            "webhook_state IN ('off', 'waiting', 'sent', 'failed')", name="alert_webhook_state"
        ),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["claim_id"], ["claim.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["fact_check_id"], ["fact_check.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["matched_claim_id"], ["claim.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pair_key"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_acknowledged_at"), ["acknowledged_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alert_article_id"), ["article_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_claim_id"), ["claim_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            "ix_alert_webhook", ["webhook_state", "webhook_next_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_webhook")
        batch_op.drop_index(batch_op.f("ix_alert_created_at"))
        batch_op.drop_index(batch_op.f("ix_alert_claim_id"))
        batch_op.drop_index(batch_op.f("ix_alert_article_id"))
        batch_op.drop_index(batch_op.f("ix_alert_acknowledged_at"))

    op.drop_table("alert")
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_entry_state")
        batch_op.drop_index(batch_op.f("ix_feed_entry_feed_id"))
        batch_op.drop_index(batch_op.f("ix_feed_entry_article_id"))

    op.drop_table("feed_entry")
    op.drop_table("feed")
