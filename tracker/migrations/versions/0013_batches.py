"""batches: the OpenAI Batch API's batches, their requests, and which calls they answered

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 09:00:00

`tracker import --batch-api` sends the first request about each chunk of each article in a
batch (tracker/apibatch.py). `api_batch` keeps the provider's ids (batch, input, output and
error files), its status, request counts, times, error and the settings its requests used,
so a later run collects it instead of submitting again; `api_batch_request` says which
article and chunk each line (`custom_id`) stands for. `model_call.batch_id` marks the calls
a batch answered (billed at half price).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "'preparing', 'validating', 'in_progress', 'finalizing', 'completed', 'failed', 'expired', "
    "'cancelling', 'cancelled', 'abandoned'"
)


def upgrade() -> None:
    op.create_table(
        "api_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("base_url", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("response_format", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("prompt_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("input_file_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("output_file_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("error_file_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("requests_total", sa.Integer(), nullable=False),
        sa.Column("requests_completed", sa.Integer(), nullable=False),
        sa.Column("requests_failed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("collector", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("collector_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="api_batch_status"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_id"),
    )
    with op.batch_alter_table("api_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_batch_status"), ["status"], unique=False)

    op.create_table(
        "api_batch_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("custom_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["batch_id"], ["api_batch.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "custom_id", name="api_batch_custom_id"),
    )
    with op.batch_alter_table("api_batch_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_batch_request_article_id"), ["article_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_api_batch_request_batch_id"), ["batch_id"], unique=False
        )

    op.add_column(
        "model_call",
        sa.Column("batch_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("model_call") as batch_op:
        batch_op.drop_column("batch_id")
    with op.batch_alter_table("api_batch_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_batch_request_batch_id"))
        batch_op.drop_index(batch_op.f("ix_api_batch_request_article_id"))
    op.drop_table("api_batch_request")
    with op.batch_alter_table("api_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_batch_status"))
    op.drop_table("api_batch")
