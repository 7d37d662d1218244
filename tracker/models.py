"""Database tables (SQLModel) and the input models that create their rows.

Constrained strings (status, claim type, stance, extraction state) are plain text columns
with CHECK constraints generated from the same tuples the code uses, so the database
refuses a value the application would never write, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import AnyHttpUrl, field_validator, model_validator
from sqlmodel import Field, SQLModel

from tracker.sanitize import storable
from tracker.vocabulary import (  # noqa: F401  (re-exported: the models' vocabulary)
    ALERT_KINDS,
    BATCH_STATUSES,
    CLAIM_STATUSES,
    CLAIM_TYPES,
    ENTRY_STATES,
    EXTRACTION_STATES,
    MATCH_STATES,
    ROLES,
    STANCES,
    WEBHOOK_STATES,
    ClaimStatus,
    ClaimType,
    ExtractionState,
    MatchState,
    Role,
    Stance,
)

MAX_OUTLET_CHARS = 200  # an outlet's name; the column is indexed


def utcnow() -> datetime:
    return datetime.now(UTC)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK constraint that keeps `column` within `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def content_hash(text: str) -> str:
    """Identity of an article's text: the same text imported twice is one article."""
    canonical = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def Timestamp(**kwargs) -> datetime:
    return Field(sa_type=sa.DateTime(timezone=True), **kwargs)


# --- Articles -----------------------------------------------------------------------


class ArticleBase(SQLModel):
    title: str | None = None
    url: str | None = None
    outlet: str | None = Field(default=None, index=True)
    author: str | None = None
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class ArticleCreate(ArticleBase):
    """An article as a user or an importer hands it in."""

    text: str
    source_path: str | None = None
    # What reading the input had to repair (stray bytes, lone surrogates): shown, not stored.
    warnings: list[str] = Field(default_factory=list)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        value = storable(value)  # PostgreSQL cannot store NUL; it is never text
        if not value.strip():
            raise ValueError("the article has no text")
        return value

    @field_validator("title", "url", "outlet", "author", "source_path")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return storable(value).strip() or None if value is not None else None

    @model_validator(mode="after")
    def _outlet_is_a_name(self) -> ArticleCreate:
        """The outlet is indexed, and PostgreSQL refuses an index entry over ~2,700 bytes
        (2,000 CJK characters are 6,000): a longer one is cut, with a warning."""
        if self.outlet is not None and len(self.outlet) > MAX_OUTLET_CHARS:
            self.outlet = self.outlet[:MAX_OUTLET_CHARS]
            self.warnings.append(f"outlet cut to its first {MAX_OUTLET_CHARS} characters")
        return self

    @field_validator("published_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """Times with a zone are stored as UTC (SQLite would keep the wall-clock time and
        drop the zone: 10:00+05:00 stored as 10:00); times without one are taken as UTC."""
        return value.astimezone(UTC) if value is not None and value.tzinfo else value


class Article(ArticleBase, table=True):
    __table_args__ = (
        sa.CheckConstraint(one_of("extraction_state", EXTRACTION_STATES), name="article_state"),
        # The work queue: the oldest pending articles first (tracker/workqueue.py).
        sa.Index("ix_article_state_id", "extraction_state", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_type=sa.Text)
    content_hash: str = Field(max_length=64, unique=True)
    source_path: str | None = None
    imported_at: datetime = Timestamp(default_factory=utcnow)
    extraction_state: str = Field(default="pending", max_length=16, index=True)
    extraction_error: str | None = Field(default=None, sa_type=sa.Text)
    extraction_model: str | None = None
    prompt_hash: str | None = Field(default=None, max_length=64)
    extracted_at: datetime | None = Timestamp(default=None)
    claims_dropped: int = Field(default=0, description="Model claims whose quote was not found")
    # Who is extracting it, until when (tracker/lease.py): taken before the model call.
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = Timestamp(default=None, index=True)
    leased_at: datetime | None = Timestamp(default=None)


# --- Claims -------------------------------------------------------------------------


class ClaimBase(SQLModel):
    text: str = Field(sa_type=sa.Text, description="The claim as a standalone sentence.")
    quote: str = Field(sa_type=sa.Text, description="article.text[quote_start:quote_end]")
    quote_start: int
    quote_end: int
    claimant: str | None = Field(default=None, index=True)
    claim_type: str = Field(default="other", max_length=32, index=True)
    checkworthiness: float
    offline_score: float | None = Field(
        default=None, description="The offline model's check-worthiness of the quote"
    )


class Claim(ClaimBase, table=True):
    __table_args__ = (
        sa.CheckConstraint(one_of("status", CLAIM_STATUSES), name="claim_status"),
        sa.CheckConstraint(one_of("claim_type", CLAIM_TYPES), name="claim_type"),
        sa.CheckConstraint("checkworthiness >= 0 AND checkworthiness <= 1", name="claim_score"),
        sa.CheckConstraint("quote_start >= 0 AND quote_end > quote_start", name="claim_span"),
        # The review queue: by status, most check-worthy first; or by score alone.
        sa.Index("ix_claim_status_score", "status", "checkworthiness"),
        sa.Index("ix_claim_score", "checkworthiness"),
        # The queue's other sorts (newest, recently updated, article order), alone or after
        # a status filter, so a page or "Save and next" reads a few rows, not a million.
        sa.Index("ix_claim_created", "created_at"),
        sa.Index("ix_claim_updated", "updated_at"),
        sa.Index("ix_claim_status_article", "status", "article_id", "quote_start"),
        # The claims waiting to be compared, oldest first (tracker/matching.py): only they
        # are in it, so it is chosen whatever the statistics say (migration 0014).
        sa.Index(
            "ix_claim_unmatched",
            "id",
            sqlite_where=sa.text("matched_at IS NULL"),
            postgresql_where=sa.text("matched_at IS NULL"),
        ),
        # Never reuse the id of a deleted claim: links, exports and open review pages
        # name claims by id (PostgreSQL sequences never reuse ids anyway).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("article.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    status: str = Field(default="unreviewed", max_length=16, index=True)
    rating: str | None = Field(default=None, description="The reviewer's rating text, if any")
    cluster_id: int | None = Field(
        default=None, index=True, description="Claims confirmed to say the same thing share it"
    )
    model: str | None = None
    prompt_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Timestamp(default_factory=utcnow)
    updated_at: datetime = Timestamp(default_factory=utcnow)
    version: int = Field(default=1, description="Bumped by every change; stale edits are refused")
    # The desk's work on the claim, kept on the row so the queue can filter by it at scale;
    # the full story is in review_event.
    assignee: str | None = Field(default=None, index=True, description="Who is to check it")
    dismissed: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": sa.false()},
        index=True,
        description="Not check-worthy: kept and counted, out of the default queue",
    )
    reviewed_by: str | None = Field(default=None, index=True, description="Last verdict's author")
    reviewed_at: datetime | None = Timestamp(default=None)
    review_note: str | None = Field(
        default=None, sa_type=sa.Text, description="The note of the last verdict"
    )
    matched_at: datetime | None = Timestamp(
        default=None, description="When compared with earlier claims (None: not yet)"
    )


# --- Evidence and history -----------------------------------------------------------


class SourceCreate(SQLModel):
    url: AnyHttpUrl
    title: str | None = None
    stance: Stance = "context"
    note: str | None = None


class Source(SQLModel, table=True):
    __table_args__ = (sa.CheckConstraint(one_of("stance", STANCES), name="source_stance"),)

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("claim.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    url: str = Field(sa_type=sa.Text)
    title: str | None = None
    stance: str = Field(default="context", max_length=16)
    note: str | None = Field(default=None, sa_type=sa.Text)
    added_by: str
    added_at: datetime = Timestamp(default_factory=utcnow)


class ReviewEvent(SQLModel, table=True):
    """Append-only: the database refuses updates to a row once written."""

    __tablename__ = "review_event"
    # Reviews per day (Overview) and each person's last activity (People).
    __table_args__ = (
        sa.Index("ix_review_event_at", "at"),
        sa.Index("ix_review_event_actor_at", "actor", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("claim.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    actor: str
    at: datetime = Timestamp(default_factory=utcnow)
    action: str = Field(
        max_length=32, description="status, edit, source_added, assigned, dismissed, ..."
    )
    field: str | None = None
    from_value: str | None = Field(default=None, sa_type=sa.Text)
    to_value: str | None = Field(default=None, sa_type=sa.Text)
    note: str | None = Field(default=None, sa_type=sa.Text)


class ModelCall(SQLModel, table=True):
    """One request to a language model, kept for audit and cost. Never holds a secret."""

    __tablename__ = "model_call"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("article.id", ondelete="SET NULL"), index=True
        ),
    )
    at: datetime = Timestamp(default_factory=utcnow)
    base_url: str
    model: str
    prompt_hash: str = Field(max_length=64)
    response_format: str = Field(max_length=32)
    attempt: int = Field(default=1, description="1, or the re-ask number + 1")
    retries: int = Field(default=0, description="HTTP retries the SDK made (429, 5xx, ...)")
    request: str = Field(sa_type=sa.Text, description="The JSON body sent (no headers)")
    response: str | None = Field(default=None, sa_type=sa.Text, description="Raw body received")
    status_code: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    finish_reason: str | None = None
    refusal: str | None = Field(default=None, sa_type=sa.Text)
    error: str | None = Field(default=None, sa_type=sa.Text)
    batch_id: str | None = Field(
        default=None, max_length=200, description="The Batch API batch that answered it"
    )


class Reviewer(SQLModel, table=True):
    """Someone who works on the desk, and what they may do. A row is made the first time a
    person acts or is assigned a claim; `name` is how they first wrote it, and every later
    spelling that folds to the same `name_key` ("ÉMILE", "émile") is the same person."""

    __table_args__ = (
        sa.CheckConstraint(f"role IS NULL OR {one_of('role', ROLES)}", name="reviewer_role"),
        sa.UniqueConstraint("name_key", name="uq_reviewer_name_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    name_key: str = Field(description="tracker.people.person_key(name)")
    role: str | None = Field(
        default=None, max_length=16, description="None: TRACKER_ADMINS, else the default role"
    )
    added_at: datetime = Timestamp(default_factory=utcnow)


class ClaimMatch(SQLModel, table=True):
    """An earlier claim that may say what a newer one says, and what was decided about it."""

    __tablename__ = "claim_match"
    __table_args__ = (
        sa.CheckConstraint(one_of("state", MATCH_STATES), name="claim_match_state"),
        sa.UniqueConstraint("claim_id", "other_id", name="claim_match_pair"),
    )

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("claim.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    other_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("claim.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    score: float
    state: str = Field(default="suggested", max_length=16)
    decided_by: str | None = None
    decided_at: datetime | None = Timestamp(default=None)


class FactCheck(SQLModel, table=True):
    """A published fact-check (schema.org ClaimReview), ours or another organisation's."""

    __tablename__ = "fact_check"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True, description="sha256 of url and claim")
    claim_reviewed: str = Field(sa_type=sa.Text)
    rating: str | None = None
    organisation: str | None = None
    url: str | None = Field(default=None, sa_type=sa.Text)
    date_published: datetime | None = Timestamp(default=None)
    claimant: str | None = None
    appearance_url: str | None = Field(default=None, sa_type=sa.Text)
    imported_at: datetime = Timestamp(default_factory=utcnow)


class Worker(SQLModel, table=True):
    """An extraction worker that is (or was) running: `tracker worker`, or the dashboard's
    own. `seen_at` is its heartbeat; one not seen for a lease's length is gone."""

    owner: str = Field(primary_key=True, max_length=200, description="its lease owner name")
    host: str = Field(max_length=200)
    pid: int
    concurrency: int
    started_at: datetime = Timestamp(default_factory=utcnow)
    seen_at: datetime = Timestamp(default_factory=utcnow)


# --- Monitoring: feeds, what they listed, alerts ----------------------------------------


class Feed(SQLModel, table=True):
    """A news feed (RSS, Atom) or news sitemap that `tracker watch` follows, with what the
    last fetch said: its validators for a conditional GET and, after a failure, when to
    try again (back-off)."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=sa.Text, unique=True)
    outlet: str | None = Field(default=None, description="Outlet of its articles, if given")
    title: str | None = Field(default=None, description="The feed's own title (untrusted)")
    kind: str | None = Field(default=None, max_length=32, description="rss20, atom10, sitemap")
    added_by: str | None = None
    added_at: datetime = Timestamp(default_factory=utcnow)
    etag: str | None = Field(default=None, sa_type=sa.Text)
    last_modified: str | None = None
    checked_at: datetime | None = Timestamp(default=None)
    ok_at: datetime | None = Timestamp(default=None, description="Last successful fetch")
    failures: int = Field(default=0, description="Failed fetches in a row")
    error: str | None = Field(default=None, sa_type=sa.Text, description="Why the last failed")
    next_check_at: datetime | None = Timestamp(default=None, description="Not before (back-off)")


class FeedEntry(SQLModel, table=True):
    """An item a feed listed: new once, by its GUID within the feed and by its page's URL.
    Its page, once read, is an article; the same text from two outlets is one article with
    two entries (its appearances)."""

    __tablename__ = "feed_entry"
    __table_args__ = (
        sa.CheckConstraint(one_of("state", ENTRY_STATES), name="feed_entry_state"),
        sa.UniqueConstraint("feed_id", "guid_key", name="feed_entry_guid"),
        sa.Index("ix_feed_entry_state", "state", "feed_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("feed.id", ondelete="SET NULL"), index=True),
    )
    guid_key: str | None = Field(default=None, max_length=64, description="sha256 of its GUID")
    url: str = Field(sa_type=sa.Text, description="The link the feed gave")
    url_key: str = Field(max_length=64, unique=True, description="sha256 of the link")
    title: str | None = None
    published_at: datetime | None = Timestamp(default=None)
    seen_at: datetime = Timestamp(default_factory=utcnow)
    state: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0, description="Fetches of its page so far")
    error: str | None = Field(default=None, sa_type=sa.Text)
    fetched_url: str | None = Field(default=None, sa_type=sa.Text, description="After redirects")
    article_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("article.id", ondelete="SET NULL"), index=True
        ),
    )
    alerts_checked_at: datetime | None = Timestamp(
        default=None, description="The extraction (extracted_at) whose claims raised alerts"
    )


class Alert(SQLModel, table=True):
    """A checked claim said again: a new claim matching one with a verdict, or a published
    fact-check. One per article and matched claim or fact-check (`pair_key`), so it is
    raised and sent once. What it said is kept as it was raised (claims change)."""

    __table_args__ = (
        sa.CheckConstraint(one_of("kind", ALERT_KINDS), name="alert_kind"),
        sa.CheckConstraint(one_of("webhook_state", WEBHOOK_STATES), name="alert_webhook_state"),
        sa.Index("ix_alert_webhook", "webhook_state", "webhook_next_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pair_key: str = Field(max_length=100, unique=True)
    kind: str = Field(max_length=16)
    created_at: datetime = Timestamp(default_factory=utcnow, index=True)
    claim_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("claim.id", ondelete="SET NULL"), index=True),
    )
    article_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("article.id", ondelete="SET NULL"), index=True
        ),
    )
    matched_claim_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("claim.id", ondelete="SET NULL")),
    )
    fact_check_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("fact_check.id", ondelete="SET NULL")),
    )
    score: float = Field(description="0-1")
    how: str = Field(description="linked, suggested, prior fact-check")
    caution: str | None = Field(default=None, description="Why the match may not hold")
    verdict: str = Field(description="The matched claim's status, or the fact-check's rating")
    claim_text: str = Field(sa_type=sa.Text)
    article_title: str | None = None
    article_url: str | None = Field(default=None, sa_type=sa.Text)
    outlet: str | None = None
    matched_text: str = Field(sa_type=sa.Text)
    matched_source: str | None = Field(default=None, description="Its article, or organisation")
    matched_url: str | None = Field(default=None, sa_type=sa.Text)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = Timestamp(default=None, index=True)
    webhook_state: str = Field(default="off", max_length=16)
    webhook_attempts: int = 0
    webhook_next_at: datetime | None = Timestamp(default=None)
    webhook_error: str | None = Field(default=None, sa_type=sa.Text)
    webhook_sent_at: datetime | None = Timestamp(default=None)


# --- The OpenAI Batch API (tracker/apibatch.py) ------------------------------------


class ApiBatch(SQLModel, table=True):
    """A batch of first requests sent through the Batch API: what the provider calls it,
    where it stands, and what it needs to be collected by a later run (the settings that
    shaped its requests). Its articles hold a lease named `batch-api:<id>` meanwhile."""

    __tablename__ = "api_batch"
    __table_args__ = (
        sa.CheckConstraint(one_of("status", BATCH_STATUSES), name="api_batch_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider_id: str | None = Field(default=None, max_length=200, unique=True)
    base_url: str = Field(description="The server it was sent to (no secret in it)")
    model: str
    response_format: str = Field(max_length=32)
    prompt_hash: str = Field(max_length=64)
    options: str = Field(sa_type=sa.Text, description="JSON: the settings its requests used")
    status: str = Field(default="preparing", max_length=16, index=True)
    input_file_id: str | None = Field(default=None, max_length=200)
    output_file_id: str | None = Field(default=None, max_length=200)
    error_file_id: str | None = Field(default=None, max_length=200)
    requests_total: int = 0
    requests_completed: int = 0
    requests_failed: int = 0
    created_at: datetime = Timestamp(default_factory=utcnow)
    submitted_at: datetime | None = Timestamp(default=None)
    expires_at: datetime | None = Timestamp(default=None)
    checked_at: datetime | None = Timestamp(default=None)
    finished_at: datetime | None = Timestamp(default=None)
    collected_at: datetime | None = Timestamp(default=None)
    error: str | None = Field(default=None, sa_type=sa.Text)
    # The run storing its results right now, so two runs never collect it at once.
    collector: str | None = Field(default=None, max_length=200)
    collector_expires_at: datetime | None = Timestamp(default=None)


class ApiBatchRequest(SQLModel, table=True):
    """One line of a batch: the first request about one chunk of one article."""

    __tablename__ = "api_batch_request"
    __table_args__ = (sa.UniqueConstraint("batch_id", "custom_id", name="api_batch_custom_id"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("api_batch.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    custom_id: str = Field(max_length=64)
    article_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("article.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    chunk: int = Field(description="Which chunk of the article (1, 2, ...)")
    collected_at: datetime | None = Timestamp(default=None)
