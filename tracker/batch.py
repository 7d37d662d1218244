"""Importing many articles at once: concurrent, resumable, and honest about every item.

Three kinds of work run side by side so none is a serial bottleneck: a reader thread
reads and parses the inputs, up to `concurrency` workers wait on the model, and one
writer thread does every database step (SQLite has one writer anyway, and the event loop
never blocks on disk). Each article is committed on its own: an interrupted run loses at
most the articles in flight, and running it again finishes the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker.chunking import split_into_chunks
from tracker.config import Settings
from tracker.ingest import add_article, extract_and_store
from tracker.llm import ModelClient
from tracker.models import Article, ArticleCreate, content_hash
from tracker.pricing import cost_usd
from tracker.prompts import load_prompts
from tracker.readers import Item, ReadError

_DONE = object()


@dataclass
class ItemReport:
    """What happened to one input."""

    source: str
    state: str  # extracted, failed, skipped, invalid (unreadable input), duplicate
    article_id: int | None = None
    title: str | None = None
    claims: int = 0
    dropped: int = 0
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class BatchReport:
    items: list[ItemReport] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str | None = None  # why the batch stopped early, if it did
    throttles: int = 0  # 429 answers seen

    def count(self, *states: str) -> int:
        return sum(1 for item in self.items if item.state in states)

    @property
    def failures(self) -> list[ItemReport]:
        return [item for item in self.items if item.state in ("failed", "invalid")]

    @property
    def prompt_tokens(self) -> int:
        return sum(item.prompt_tokens for item in self.items)

    @property
    def completion_tokens(self) -> int:
        return sum(item.completion_tokens for item in self.items)

    def summary(self, settings: Settings) -> dict[str, Any]:
        """The machine-readable summary `tracker import --json` prints."""
        return {
            "articles": len(self.items),
            "extracted": self.count("extracted"),
            "failed": self.count("failed", "invalid"),
            "skipped": self.count("skipped", "duplicate"),
            "claims": sum(item.claims for item in self.items),
            "dropped": sum(item.dropped for item in self.items),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": cost_usd(settings, self.prompt_tokens, self.completion_tokens),
            "seconds": round(self.seconds, 3),
            "rate_limited": self.throttles,
            "stopped": self.stopped,
            "failures": [
                {"source": f.source, "article_id": f.article_id, "reason": f.error}
                for f in self.failures
            ],
        }


async def run_batch(
    engine: Engine,
    items: Iterable[Item | int],
    settings: Settings,
    *,
    concurrency: int = 8,
    force: bool = False,
    retry_failed: bool = False,
    on_item: Callable[[ItemReport], None] | None = None,
) -> BatchReport:
    """Import every item (an article to store, a stored article's id, or a read error)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-read")
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-db")
    client = ModelClient(settings, concurrency=concurrency)
    report = BatchReport()
    seen_texts: set[str] = set()
    seen_articles: set[int] = set()
    pending = iter(items)
    started = time.monotonic()

    async def db(fn: Callable[..., Any], *args: Any) -> Any:
        return await loop.run_in_executor(writer, fn, *args)

    def done(item_report: ItemReport) -> None:
        report.items.append(item_report)
        if on_item:
            on_item(item_report)

    async def article_for(item: ArticleCreate | int) -> tuple[int, str] | None:
        """The stored article to extract, or None (reported) when this input repeats one."""
        if isinstance(item, int):
            article_id, source = item, f"article {item}"
        else:
            source = item.source_path or "<input>"
            digest = content_hash(item.text)
            if digest in seen_texts:
                done(ItemReport(source, "duplicate", title=item.title))
                return None
            seen_texts.add(digest)
            article, _ = await db(add_article, engine, item)
            article_id = article.id
        if article_id in seen_articles:
            done(ItemReport(source, "duplicate", article_id))
            return None
        seen_articles.add(article_id)
        return article_id, source

    async def work() -> None:
        # Inputs are read (and HTML or JSON parsed) in the reader thread, one at a time,
        # while other workers wait on the model.
        while not stop.is_set():
            item = await loop.run_in_executor(reader, next, pending, _DONE)
            if item is _DONE:
                return
            if isinstance(item, ReadError):
                done(ItemReport(item.source, "invalid", error=item.reason))
                continue
            target = await article_for(item)
            if target is None:
                continue
            article_id, source = target
            outcome = await extract_and_store(
                engine, article_id, settings, client,
                force=force, retry_failed=retry_failed or force, db=db,
            )  # fmt: skip
            done(
                ItemReport(
                    source,
                    outcome.state,
                    article_id,
                    outcome.title,
                    outcome.claims,
                    outcome.dropped,
                    outcome.error,
                    outcome.prompt_tokens,
                    outcome.completion_tokens,
                )
            )
            if outcome.fatal and not stop.is_set():
                report.stopped = outcome.error
                stop.set()

    try:
        await asyncio.gather(*(work() for _ in range(concurrency)))
    finally:
        report.throttles = client.gate.throttles
        report.seconds = time.monotonic() - started
        await client.close()
        reader.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)
    return report


def unfinished_articles(engine: Engine, *, failed: bool = True) -> list[int]:
    """Stored articles still to extract: interrupted ones (pending) and, if asked, failed."""
    states = ["pending", "failed"] if failed else ["pending"]
    with Session(engine) as session:
        query = select(Article.id).where(Article.extraction_state.in_(states))
        return list(session.exec(query.order_by(Article.id)).all())


# --- Dry run ------------------------------------------------------------------------------


@dataclass
class Plan:
    """What an import would do, with no model call and no write."""

    articles: int = 0
    new: int = 0
    already_extracted: int = 0
    previously_failed: int = 0
    duplicates: int = 0
    invalid: list[ReadError] = field(default_factory=list)
    chunks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["invalid"] = [{"source": e.source, "reason": e.reason} for e in self.invalid]
        return data


# Rough and stated as such: ~4 characters a token in English; answers run about a
# tenth of what is sent (a list of short claims).
CHARS_PER_TOKEN = 4
ANSWER_SHARE = 0.1


def plan_batch(
    engine: Engine, items: Iterable[Item], settings: Settings, *, force: bool = False
) -> Plan:
    """Read, validate, de-duplicate, count and estimate tokens for an import."""
    plan = Plan()
    prompts = load_prompts()
    overhead = len(prompts.system) + len(prompts.user.template)
    seen: set[str] = set()
    with Session(engine) as session:
        for item in items:
            if isinstance(item, ReadError):
                plan.invalid.append(item)
                continue
            plan.articles += 1
            digest = content_hash(item.text)
            if digest in seen:
                plan.duplicates += 1
                continue
            seen.add(digest)
            state = session.exec(
                select(Article.extraction_state).where(Article.content_hash == digest)
            ).first()
            if state == "extracted" and not force:
                plan.already_extracted += 1
                continue
            if state == "failed" and not force:
                plan.previously_failed += 1
                continue
            plan.new += 1
            chunks = split_into_chunks(
                item.text, settings.chunk_chars, settings.chunk_overlap_chars
            )
            sent = sum(overhead + len(c.text) for c in chunks) // CHARS_PER_TOKEN
            plan.chunks += len(chunks)
            plan.prompt_tokens += sent
            plan.completion_tokens += int(sent * ANSWER_SHARE)
    plan.cost_usd = cost_usd(settings, plan.prompt_tokens, plan.completion_tokens)
    return plan
