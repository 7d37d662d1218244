"""Extracting an article's claims and storing them, in two phases: `extract_job` talks
to the model (no database), `store` writes the article, its claims or failure, and the
model-call log in one transaction.

`import_article` is the one-article entry point (the dashboard): it stores the article
first, so a pasted text survives any failure. `tracker.batch` runs the same two phases
for many articles at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from tracker import lease
from tracker.config import Settings
from tracker.db import StorageError, disconnected, session_scope, storage_problem
from tracker.extractors import Extractor, make_extractor
from tracker.llm import CallRecord
from tracker.matching import match_pending
from tracker.models import (
    Article,
    ArticleCreate,
    Claim,
    ModelCall,
    ReviewEvent,
    Source,
    content_hash,
    utcnow,
)
from tracker.prompts import load_prompts
from tracker.results import ExtractionFailed, ExtractionResult
from tracker.sanitize import scrub, storable
from tracker.schemas import ExtractedClaim


@dataclass
class ImportOutcome:
    article_id: int | None
    title: str | None
    # busy: another import holds the article's lease (it is extracting it right now)
    state: Literal["extracted", "failed", "skipped", "busy"]
    claims: int = 0
    dropped: int = 0
    error: str | None = None
    fatal: bool = False
    new_article: bool = False
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    drop_reasons: list[str] = field(default_factory=list)
    # Of the tokens above, those a Batch API batch answered (billed at half price).
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0


@dataclass
class Job:
    """One article to extract: its text, and its stored row and state if it has one.

    A new article is stored (pending) when its lease is taken, just before the model call
    (`claim`), so that another import sees it is being extracted; the dashboard stores it
    first (`add_article`), so a pasted text survives any failure.
    """

    text: str
    title: str | None
    source: str
    article_id: int | None = None
    state: str | None = None  # None: not stored yet
    error: str | None = None
    data: ArticleCreate | None = None  # what to store, when not stored yet
    warnings: list[str] = field(default_factory=list)  # what reading the input repaired
    lease_owner: str | None = None  # the run holding the article's lease, once claimed


def add_article(engine: Engine, data: ArticleCreate) -> tuple[Article, bool]:
    """The stored article with this text, and whether it was new. Same text, same row."""
    with session_scope(engine) as session:
        return _ensure_article(session, data)


def _ensure_article(session: Session, data: ArticleCreate) -> tuple[Article, bool]:
    digest = content_hash(data.text)
    existing = session.exec(select(Article).where(Article.content_hash == digest)).first()
    if existing:
        return existing, False
    try:
        with session.begin_nested():
            article = Article.model_validate(data, update={"content_hash": digest})
            session.add(article)
            session.flush()
            return article, True
    except IntegrityError:  # another process stored the same text a moment ago
        return session.exec(select(Article).where(Article.content_hash == digest)).one(), False


def known_response_format(engine: Engine, settings: Settings) -> str | None:
    """The format to start with for this server: the one after the last format it refused
    (from the call log), so a new run does not negotiate again. Calls made in a forced
    mode leave no refusal behind and so never pin a weaker format."""
    from tracker.llm import FORMATS, REFUSED

    with Session(engine) as session:
        refused = session.exec(
            select(ModelCall.response_format)
            .where(
                ModelCall.base_url == settings.safe_base_url,
                ModelCall.error.startswith(REFUSED),
            )
            .order_by(ModelCall.id.desc())
            .limit(1)
        ).first()
    if refused in FORMATS[:-1]:
        return FORMATS[FORMATS.index(refused) + 1]
    return None


def find_job(engine: Engine, item: ArticleCreate | int) -> Job:
    """A job for new text, or for a stored article (by text or by id). Reads only."""
    if isinstance(item, int):
        with Session(engine) as session:
            article = session.get(Article, item)
        if article is None:
            raise LookupError(f"no article with id {item}")
        return _job(article, f"article {item}")
    # New text (most of an import) is told by its hash alone, in Core; only a stored
    # article is loaded.
    with Session(engine) as session:
        digest = content_hash(item.text)
        found = session.connection().execute(_ID_BY_HASH, {"digest": digest}).scalar()
        article = None if found is None else session.get(Article, found)
    source = item.source_path or "<input>"
    if article is None:
        return Job(item.text, item.title, source, data=item, warnings=item.warnings)
    _fill_in_metadata(engine, article, item)
    job = _job(article, source)
    job.warnings = item.warnings
    return job


METADATA = ("title", "url", "outlet", "author", "published_at")


def _fill_in_metadata(engine: Engine, article: Article, item: ArticleCreate) -> None:
    """A stored article gets the title, URL, outlet, author or date it lacked, when the
    same text is imported again with them. Values it has are kept: the same wire text
    from a second outlet must not move the article to that outlet."""
    missing = {
        name: getattr(item, name)
        for name in METADATA
        if getattr(article, name) is None and getattr(item, name) is not None
    }
    if missing:
        with session_scope(engine) as session:
            session.exec(sa.update(Article).where(Article.id == article.id).values(**missing))
        for name, value in missing.items():
            setattr(article, name, value)


def _job(article: Article, source: str) -> Job:
    return Job(
        article.text,
        article.title,
        source,
        article.id,
        article.extraction_state,
        article.extraction_error,
    )


def import_article(
    engine: Engine, data: ArticleCreate, settings: Settings, *, force: bool = False
) -> ImportOutcome:
    """Store the article (once) and extract its claims unless that was done already.

    The synchronous entry point, for the dashboard and scripts; `tracker.batch` runs many
    articles concurrently with the same steps.
    """
    article, new = add_article(engine, data)
    job = _job(article, data.source_path or "<input>")

    async def run() -> ImportOutcome:
        extractor = make_extractor(settings, engine=engine)
        try:
            return await run_job(engine, job, settings, extractor, force=force, retry_failed=True)
        finally:
            await extractor.close()

    outcome = asyncio.run(run())
    outcome.new_article = new
    return outcome


def claim(
    engine: Engine,
    job: Job,
    owner: str,
    settings: Settings,
    *,
    force: bool = False,
    retry_failed: bool = False,
    since: datetime | None = None,
) -> Job | ImportOutcome:
    """Take the article's lease before any model call: the job, ready to extract; or an
    outcome when there is nothing to do (another import is extracting it, or it was
    extracted, or failed and is not to be retried, as it stands now in the database).
    A new article is stored here, pending, so that other imports see it. `since`: when
    this run started; with `force`, an article extracted since then (by another run, also
    forced) is not extracted again."""
    return retrying(
        lambda: _claim(
            engine, job, owner, settings, force=force, retry_failed=retry_failed, since=since
        )
    )


def _claim(
    engine: Engine,
    job: Job,
    owner: str,
    settings: Settings,
    *,
    force: bool,
    retry_failed: bool,
    since: datetime | None,
) -> Job | ImportOutcome:
    # Core statements, not the ORM: this runs once per article on the writer thread, and
    # loading and refreshing an Article object cost more than the writes themselves.
    with session_scope(engine) as session:
        conn = session.connection()
        if job.article_id is None:
            assert job.data is not None
            article_id, new = _ensure_article_row(conn, job.data)
        else:
            article_id, new = job.article_id, False
        if not lease.acquire(conn, article_id, owner, settings.worker_lease):
            if job.article_id is not None and not _exists(conn, article_id):
                raise LookupError(f"article {job.article_id} was deleted")
            return ImportOutcome(article_id, job.title, "busy")
        if new:  # inserted by this transaction: nobody else can have changed it
            assert job.data is not None
            claimed = Job(job.data.text, job.data.title, job.source, article_id, "pending")
        else:  # as it stands now that its lease is ours
            row = conn.execute(_CLAIMED_ROW, {"id": article_id}).one()
            if force and since is not None and _at_or_after(row.extracted_at, since):
                lease.release(conn, article_id, owner)  # forced by another run meanwhile
                return ImportOutcome(article_id, job.title, "skipped")
            state, error = row.extraction_state, row.extraction_error
            claimed = Job(row.text, row.title, job.source, article_id, state, error)
        claimed.warnings, claimed.lease_owner = job.warnings, owner
        if (state := nothing_to_do(claimed, force=force, retry_failed=retry_failed)) is not None:
            lease.release(conn, article_id, owner)
            return state
        return claimed


_ARTICLE = Article.__table__
_CLAIMED_ROW = sa.select(
    _ARTICLE.c.text,
    _ARTICLE.c.title,
    _ARTICLE.c.extraction_state,
    _ARTICLE.c.extraction_error,
    _ARTICLE.c.extracted_at,
).where(_ARTICLE.c.id == sa.bindparam("id"))
_ID_BY_HASH = sa.select(_ARTICLE.c.id).where(_ARTICLE.c.content_hash == sa.bindparam("digest"))


def _exists(conn: sa.Connection, article_id: int) -> bool:
    found = conn.execute(sa.select(_ARTICLE.c.id).where(_ARTICLE.c.id == article_id)).first()
    return found is not None


def _defaults(model: type[SQLModel], values: dict[str, Any]) -> dict[str, Any]:
    """`values` (those that are columns) and, for every other column, the default the
    model would give it: a row as the ORM would have inserted it."""
    columns, fixed, factories = _model_defaults(model)
    row = {**fixed, **{k: v for k, v in values.items() if k in columns}}
    for name, factory in factories:
        if name not in values:
            row[name] = factory()
    return row


@cache
def _model_defaults(
    model: type[SQLModel],
) -> tuple[frozenset[str], dict[str, Any], list[tuple[str, Callable[[], Any]]]]:
    """A table model's columns, its columns' fixed defaults, and its default factories."""
    table = model.__table__  # type: ignore[attr-defined]
    columns = frozenset(c.name for c in table.c)
    fixed, factories = {}, []
    for name, info in model.model_fields.items():
        if name in columns and not table.c[name].primary_key:
            if info.default_factory is not None:
                factories.append((name, info.default_factory))
            elif not info.is_required():
                fixed[name] = info.get_default()
    return columns, fixed, factories


def _ensure_article_row(conn: sa.Connection, data: ArticleCreate) -> tuple[int, bool]:
    """`_ensure_article` in Core: the id of the article with this text, and whether this
    transaction inserted it. A text another process inserts at the same moment is not
    inserted twice (the unique hash: no row comes back, and the other's is read)."""
    digest = content_hash(data.text)
    existing = conn.execute(_ID_BY_HASH, {"digest": digest}).scalar()
    if existing is not None:
        return existing, False
    fields = {name: getattr(data, name) for name in ArticleCreate.model_fields}
    values = {k: v for k, v in fields.items() if k in _ARTICLE.c}
    row = _defaults(Article, {**values, "content_hash": digest})
    statement = (
        _upsert(conn)(_ARTICLE)
        .values(row)
        .on_conflict_do_nothing(index_elements=["content_hash"])
        .returning(_ARTICLE.c.id)
    )
    inserted = conn.execute(statement).scalar()
    if inserted is not None:
        return inserted, True
    return conn.execute(_ID_BY_HASH, {"digest": digest}).scalar_one(), False


def _upsert(conn: sa.Connection) -> Any:
    """The dialect's INSERT that takes ON CONFLICT (SQLite and PostgreSQL both do)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _at_or_after(moment: datetime | None, since: datetime) -> bool:
    if moment is None:
        return False
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) >= since


def nothing_to_do(job: Job, *, force: bool, retry_failed: bool) -> ImportOutcome | None:
    """Why an article needs no extraction now (extracted already; failed and not to be
    retried), or None. The one rule for imports, their dry runs and workers."""
    if job.state == "extracted" and not force:
        return ImportOutcome(job.article_id, job.title, "skipped")
    if job.state == "failed" and not (retry_failed or force):
        return ImportOutcome(job.article_id, job.title, "skipped", error=job.error)
    return None


@dataclass
class Extracted:
    """What the model phase produced for a job: claims, or the reason there are none."""

    job: Job
    settings: Settings
    result: ExtractionResult | None = None
    failure: ExtractionFailed | None = None


async def extract_job(
    job: Job,
    settings: Settings,
    extractor: Extractor,
    *,
    force: bool = False,
    retry_failed: bool = False,
) -> Extracted | ImportOutcome:
    """The extraction phase (no database): claims or a failure, or at once an outcome
    when there is nothing to do (extracted before, or failed before and not to be
    retried)."""
    if (outcome := nothing_to_do(job, force=force, retry_failed=retry_failed)) is not None:
        return outcome
    try:
        result = await extractor.extract(job.text, title=job.title)
    except ExtractionFailed as failure:
        return Extracted(job, settings, failure=failure)
    return Extracted(job, settings, result=result)


def store(engine: Engine, extracted: Extracted) -> ImportOutcome:
    """The database phase: the article, its claims or failure, and the call log, in one
    transaction. If the claims cannot be stored, the article and the log still are.

    Raises StorageError when the database itself cannot be written (read-only, full,
    gone): every other article would fail the same way."""
    job, result, failure = extracted.job, extracted.result, extracted.failure
    secrets = extracted.settings.secrets()
    if result is not None:
        try:
            article_id, stored = retrying(
                lambda: _record_success(engine, job, result, extracted.settings)
            )
        except Exception as exc:
            reason, fatal = storage_problem(exc)
            if fatal:
                raise StorageError(reason) from None
            failure = ExtractionFailed(f"could not store the claims: {reason}", result.calls)
        else:
            return ImportOutcome(
                article_id,
                job.title,
                "extracted",
                claims=stored,
                dropped=result.dropped,
                drop_reasons=[storable(scrub(reason, secrets)) for reason in result.drop_reasons],
                new_article=job.article_id is None,
                calls=len(result.calls),
                **_tokens(result.calls),
            )
    assert failure is not None
    failure.reason = storable(scrub(failure.reason, secrets))
    try:
        article_id = retrying(lambda: _record_failure(engine, job, failure, secrets))
    except Exception as exc:
        reason, fatal = storage_problem(exc)
        if fatal:
            raise StorageError(reason) from None
        raise
    return ImportOutcome(
        article_id,
        job.title,
        "failed",
        error=failure.reason,
        fatal=failure.fatal,
        new_article=job.article_id is None,
        calls=len(failure.calls),
        **_tokens(failure.calls),
    )


_RETRIED_SQLSTATES = {
    "40P01",  # deadlock detected: two imports storing claims that match each other's
    "40001",  # serialization failure
    "23503",  # foreign key violation: a matched claim was replaced meanwhile
}


def retrying(write, attempts: int = 3):
    """Run a transaction again when PostgreSQL chose it as a deadlock's victim, or a claim
    it matched was deleted by another import's commit in between, or the connection was
    lost (a killed backend, a restarted server: the pool connects again); nothing was
    written. Paid-for claims are not given up for one dropped connection."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except sa.exc.DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if attempt == attempts:
                raise
            if disconnected(exc):
                time.sleep(0.5 * attempt)
            elif code not in _RETRIED_SQLSTATES:
                raise


async def run_job(
    engine: Engine,
    job: Job,
    settings: Settings,
    extractor: Extractor,
    *,
    force: bool = False,
    retry_failed: bool = False,
) -> ImportOutcome:
    """Both phases for one article, with its lease; the database steps run in a thread."""
    owner = lease.new_owner()
    claimed = await asyncio.to_thread(
        claim, engine, job, owner, settings, force=force, retry_failed=retry_failed
    )
    if isinstance(claimed, ImportOutcome):
        return claimed
    try:
        extracted = await extract_job(
            claimed, settings, extractor, force=force, retry_failed=retry_failed
        )
        if isinstance(extracted, ImportOutcome):
            return extracted
        outcome = await asyncio.to_thread(store, engine, extracted)
        await asyncio.to_thread(match_pending, engine, settings.match_suggest, settings.match_link)
        return outcome
    finally:
        await asyncio.to_thread(lease.release_all, engine, owner)


def _stored_article(session: Session, job: Job) -> Article:
    if job.article_id is not None:
        article = session.get(Article, job.article_id)
        if article is None:
            raise LookupError(f"article {job.article_id} was deleted during extraction")
        return article
    assert job.data is not None
    return _ensure_article(session, job.data)[0]


def _tokens(calls: list[CallRecord]) -> dict[str, int]:
    batched = [c for c in calls if c.batch_id]
    return {
        "prompt_tokens": sum(c.prompt_tokens or 0 for c in calls),
        "completion_tokens": sum(c.completion_tokens or 0 for c in calls),
        "batch_prompt_tokens": sum(c.prompt_tokens or 0 for c in batched),
        "batch_completion_tokens": sum(c.completion_tokens or 0 for c in batched),
    }


def _log_calls(
    session: Session,
    article_id: int,
    calls: list[CallRecord],
    prompt_hash: str,
    secrets: list[str],
) -> None:
    """The model-call log; every text in it scrubbed (a re-ask's request carries the
    previous answer, which can hold whatever the server put in it, the key included).
    One Core INSERT of all the rows, on the session's transaction."""
    rows = []
    for call in calls:
        values = {
            k: v for k, v in vars(call).items() if k not in {"content", "request", "fallbacks"}
        }
        values["request"] = call.request_json()
        for name, value in values.items():
            if isinstance(value, str):  # (no NUL, no lone surrogate: PostgreSQL takes neither)
                values[name] = storable(scrub(value, secrets))
            elif isinstance(value, int) and not isinstance(value, bool):
                values[name] = value if -(2**31) <= value < 2**31 else None  # INTEGER columns
        values["attempt"] = values["attempt"] or 1
        values["retries"] = values["retries"] or 0
        rows.append(
            _defaults(ModelCall, {"article_id": article_id, "prompt_hash": prompt_hash, **values})
        )
    if rows:
        session.connection().execute(_INSERT_CALLS, rows)


def _record_failure(engine: Engine, job: Job, failure: ExtractionFailed, secrets: list[str]) -> int:
    """Keep the article with the reason. A configuration fault (`fatal`) leaves it pending,
    so that the next import, once the setup is fixed, extracts it without being asked.
    An article extracted meanwhile (by another import, or before a --force that failed)
    stays extracted: its claims are there."""
    with session_scope(engine) as session:
        article = _stored_article(session, job)
        session.flush()
        _lock(session, article.id)
        session.refresh(article)
        if article.extraction_state != "extracted":
            article.extraction_state = "pending" if failure.fatal or failure.pending else "failed"
            article.extraction_error = failure.reason
            session.add(article)
        _log_calls(session, article.id, failure.calls, load_prompts().hash, secrets)
        if job.lease_owner:
            lease.release(session, article.id, job.lease_owner)
        return article.id


def _record_success(
    engine: Engine, job: Job, result: ExtractionResult, settings: Settings
) -> tuple[int, int]:
    """Write the claims; on re-extraction, claims a reviewer has touched are kept.

    Core statements, not the ORM (this is most of an import's database work): the claims
    in one INSERT, the article's new state and the lease given back in one UPDATE."""
    secrets = settings.secrets()
    with session_scope(engine) as session:
        if job.article_id is None:
            article_id = _stored_article(session, job).id
            session.flush()
        else:
            article_id = job.article_id
        if not _lock(session, article_id):
            raise LookupError(f"article {article_id} was deleted during extraction")
        assert article_id is not None
        conn = session.connection()
        kept = _replace_untouched_claims(session, article_id)
        new = [c for c in result.claims if not any(_duplicates(c, k) for k in kept)]
        if new:  # compared with earlier claims later (matching.match_pending)
            conn.execute(
                _INSERT_CLAIMS,
                [
                    _defaults(
                        Claim,
                        {
                            "article_id": article_id,
                            "model": result.model,
                            "prompt_hash": result.prompt_hash,
                            **claim.model_dump(),
                            "text": scrub(claim.text, secrets),
                            "claimant": claim.claimant and scrub(claim.claimant, secrets),
                        },
                    )
                    for claim in new
                ],
            )
        state = {
            "article_id": article_id,
            "extraction_state": "extracted",
            "extraction_error": None,
            "extraction_model": result.model,
            "prompt_hash": result.prompt_hash,
            "extracted_at": utcnow(),
            "claims_dropped": result.dropped,
        }
        if job.lease_owner:
            conn.execute(_EXTRACTED_AND_GIVEN_BACK, {**state, "holder": job.lease_owner})
        else:
            conn.execute(_EXTRACTED, state)
        _log_calls(session, article_id, result.calls, result.prompt_hash, secrets)
        return article_id, len(new)


_CLAIM = Claim.__table__
# Built once (they run for every article); the values are bound at execution.
_INSERT_CLAIMS = sa.insert(_CLAIM)
_INSERT_CALLS = sa.insert(ModelCall.__table__)
_EXTRACTED = sa.update(_ARTICLE).where(_ARTICLE.c.id == sa.bindparam("article_id"))
_EXTRACTED_AND_GIVEN_BACK = _EXTRACTED.values(lease.given_back(sa.bindparam("holder")))


def _lock(session: Session, article_id: int) -> bool:
    """Hold the article until this transaction ends, so that two imports storing the same
    article one after the other each see the claims of the other (and replace them) rather
    than both adding theirs; False if there is no such article. SQLite: the database's
    write lock, taken now instead of at the first insert. PostgreSQL: the row lock, after
    a lock all stores of claims share: a store deletes the article's old claims (and their
    matches) and links its new claims to other articles' claims, so two stores at once
    deadlocked on each other's rows, or linked a claim the other had just deleted (a
    foreign-key violation). Stores take milliseconds; the model calls, which take seconds,
    still run side by side."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(sa.text("SELECT pg_advisory_xact_lock(7263532)"))  # "tracker" + 1
        found = session.exec(
            sa.text("SELECT id FROM article WHERE id = :id FOR UPDATE").bindparams(id=article_id)
        ).first()
        return found is not None
    updated = session.exec(
        sa.text("UPDATE article SET id = id WHERE id = :id").bindparams(id=article_id)
    )
    return bool(updated.rowcount)


def _replace_untouched_claims(session: Session, article_id: int) -> list[Any]:
    """Delete the article's claims no reviewer has touched; return the ones kept (rows
    with their id, status and quote's span)."""
    conn = session.connection()
    claims = conn.execute(
        sa.select(_CLAIM.c.id, _CLAIM.c.status, _CLAIM.c.quote_start, _CLAIM.c.quote_end).where(
            _CLAIM.c.article_id == article_id
        )
    ).all()
    if not claims:
        return []
    ids = [c.id for c in claims]
    touched = set(
        session.exec(select(ReviewEvent.claim_id).where(ReviewEvent.claim_id.in_(ids))).all()
    ) | set(session.exec(select(Source.claim_id).where(Source.claim_id.in_(ids))).all())
    kept = [c for c in claims if c.id in touched or c.status != "unreviewed"]
    kept_ids = {c.id for c in kept}
    stale = [c.id for c in claims if c.id not in kept_ids]
    if stale:
        session.exec(sa.delete(Claim).where(Claim.id.in_(stale)))
    return kept


def _duplicates(new: ExtractedClaim, old: Any) -> bool:
    """A new claim on text a kept (reviewed) claim already covers: the reviewer's version,
    edited or not, stands."""
    return new.quote_start < old.quote_end and old.quote_start < new.quote_end
