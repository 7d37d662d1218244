"""Storing an article and its extracted claims: the one entry point the CLI and the
dashboard both call (`import_article`).

The article is committed first, on its own, so that whatever happens to the model call
its text is never lost; the claims, the article's new state and the model-call log are
then written together in a second transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from tracker.config import Settings
from tracker.db import session_scope
from tracker.extract import ExtractionFailed, ExtractionResult, extract_claims
from tracker.llm import CallRecord, ModelClient
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
from tracker.schemas import ExtractedClaim


@dataclass
class ImportOutcome:
    article_id: int
    title: str | None
    state: Literal["extracted", "failed", "skipped"]
    claims: int = 0
    dropped: int = 0
    error: str | None = None
    fatal: bool = False
    new_article: bool = False
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def add_article(engine: Engine, data: ArticleCreate) -> tuple[Article, bool]:
    """The stored article with this text, and whether it was new. Same text, same row."""
    digest = content_hash(data.text)
    with session_scope(engine) as session:
        existing = session.exec(select(Article).where(Article.content_hash == digest)).first()
        if existing:
            return existing, False
    try:
        with session_scope(engine) as session:
            article = Article.model_validate(data, update={"content_hash": digest})
            session.add(article)
            session.flush()
            return article, True
    except IntegrityError:  # another process stored the same text a moment ago
        with Session(engine) as session:
            return session.exec(select(Article).where(Article.content_hash == digest)).one(), False


def import_article(
    engine: Engine, data: ArticleCreate, settings: Settings, *, force: bool = False
) -> ImportOutcome:
    """Store the article (once) and extract its claims unless that was done already.

    The synchronous entry point, for the dashboard and scripts; `tracker.batch` runs many
    articles concurrently with the same steps.
    """
    article, new = add_article(engine, data)

    async def run() -> ImportOutcome:
        client = ModelClient(settings, concurrency=1)
        try:
            return await extract_and_store(engine, article.id, settings, client, force=force)
        finally:
            await client.close()

    outcome = asyncio.run(run())
    outcome.new_article = new
    return outcome


DbRunner = Callable[..., Awaitable[Any]]


async def extract_and_store(
    engine: Engine,
    article_id: int,
    settings: Settings,
    client: ModelClient,
    *,
    force: bool = False,
    retry_failed: bool = True,
    db: DbRunner = asyncio.to_thread,
) -> ImportOutcome:
    """Extract one stored article's claims and record the result, success or failure.

    `db` runs the blocking database steps off the event loop (a batch passes its single
    writer thread, so SQLite sees one writer and the loop never waits on a disk).
    """
    title, state, error = await db(_extraction_state, engine, article_id)
    if state == "extracted" and not force:
        return ImportOutcome(article_id, title, "skipped")
    if state == "failed" and not (retry_failed or force):
        return ImportOutcome(article_id, title, "skipped", error=error)
    text = await db(_article_text, engine, article_id)
    try:
        result = await extract_claims(text, title=title, client=client, settings=settings)
    except ExtractionFailed as failure:
        await db(_record_failure, engine, article_id, failure)
        return ImportOutcome(
            article_id,
            title,
            "failed",
            error=failure.reason,
            fatal=failure.fatal,
            calls=len(failure.calls),
            **_tokens(failure.calls),
        )
    stored = await db(_record_success, engine, article_id, result)
    return ImportOutcome(
        article_id,
        title,
        "extracted",
        claims=stored,
        dropped=result.dropped,
        calls=len(result.calls),
        **_tokens(result.calls),
    )


def _extraction_state(engine: Engine, article_id: int) -> tuple[str | None, str, str | None]:
    with Session(engine) as session:
        row = session.exec(
            select(Article.title, Article.extraction_state, Article.extraction_error).where(
                Article.id == article_id
            )
        ).first()
    if row is None:
        raise LookupError(f"no article with id {article_id}")
    return row[0], row[1], row[2]


def _article_text(engine: Engine, article_id: int) -> str:
    with Session(engine) as session:
        return session.exec(select(Article.text).where(Article.id == article_id)).one()


def _tokens(calls: list[CallRecord]) -> dict[str, int]:
    return {
        "prompt_tokens": sum(c.prompt_tokens or 0 for c in calls),
        "completion_tokens": sum(c.completion_tokens or 0 for c in calls),
    }


def _log_calls(session: Session, article_id: int, calls: list[CallRecord], prompt_hash: str):
    for call in calls:
        session.add(
            ModelCall(
                article_id=article_id,
                prompt_hash=prompt_hash,
                **{k: v for k, v in vars(call).items() if k not in {"content", "request"}},
                request=call.request_json(),
            )
        )


def _record_failure(engine: Engine, article_id: int, failure: ExtractionFailed) -> None:
    with session_scope(engine) as session:
        article = session.get(Article, article_id)
        article.extraction_state = "failed"
        article.extraction_error = failure.reason
        session.add(article)
        _log_calls(session, article_id, failure.calls, load_prompts().hash)


def _record_success(engine: Engine, article_id: int, result: ExtractionResult) -> int:
    """Write the claims; on re-extraction, claims a reviewer has touched are kept."""
    with session_scope(engine) as session:
        article = session.get(Article, article_id)
        kept = _replace_untouched_claims(session, article_id)
        new = [c for c in result.claims if not any(_duplicates(c, k) for k in kept)]
        session.add_all(
            Claim(
                article_id=article_id,
                model=result.model,
                prompt_hash=result.prompt_hash,
                **claim.model_dump(),
            )
            for claim in new
        )
        article.extraction_state = "extracted"
        article.extraction_error = None
        article.extraction_model = result.model
        article.prompt_hash = result.prompt_hash
        article.extracted_at = utcnow()
        article.claims_dropped = result.dropped
        session.add(article)
        _log_calls(session, article_id, result.calls, result.prompt_hash)
        return len(new)


def _replace_untouched_claims(session: Session, article_id: int) -> list[Claim]:
    """Delete the article's claims no reviewer has touched; return the ones kept."""
    claims = session.exec(select(Claim).where(Claim.article_id == article_id)).all()
    if not claims:
        return []
    ids = [c.id for c in claims]
    touched = set(
        session.exec(select(ReviewEvent.claim_id).where(ReviewEvent.claim_id.in_(ids))).all()
    ) | set(session.exec(select(Source.claim_id).where(Source.claim_id.in_(ids))).all())
    kept = [c for c in claims if c.id in touched or c.status != "unreviewed"]
    stale = [c.id for c in claims if c not in kept]
    if stale:
        session.exec(sa.delete(Claim).where(Claim.id.in_(stale)))
    return kept


def _duplicates(new: ExtractedClaim, old: Claim) -> bool:
    return (new.quote_start, new.quote_end) == (old.quote_start, old.quote_end) and (
        new.text.casefold() == old.text.casefold()
    )
