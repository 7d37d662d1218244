"""Importing many articles at once: concurrent, resumable, and honest about every item.

Three kinds of work run side by side so none is a serial bottleneck: a reader thread
reads and parses the inputs, up to `concurrency` workers wait on the model, and one
writer thread does every database step (SQLite has one writer anyway, and the event loop
never blocks on disk). Each article is committed on its own: an interrupted run loses at
most the articles in flight, and running it again finishes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker import lease
from tracker.chunking import split_into_chunks
from tracker.config import Settings
from tracker.db import SQLiteFileWatch, StorageError, check_writable, storage_problem
from tracker.extractors import Extractor, make_extractor
from tracker.ingest import (
    Extracted,
    ImportOutcome,
    Job,
    claim,
    extract_job,
    find_job,
    nothing_to_do,
    retrying,
    store,
)
from tracker.models import Article, ArticleCreate, content_hash, utcnow
from tracker.pricing import cost_usd
from tracker.prompts import load_prompts
from tracker.readers import Item, ReadError
from tracker.results import ExtractionFailed

_DONE = object()
# Stored articles after which a batch compares new claims in a process of its own (the
# second core) while it goes on; a smaller import compares them at its end.
MATCHER_AFTER = 8


class _Matcher:
    """Matching off the writer's path: stores only store, and this compares what they
    stored with earlier claims (tracker.matching.match_pending), in another process while
    the batch runs, then whatever is left when it ends."""

    def __init__(
        self, engine: Engine, settings: Settings, *, at_once: bool = False, early: bool = False
    ) -> None:
        self.engine, self.settings = engine, settings
        self.stored = 0
        self.process: Any = None
        self.stop: Any = None
        self.at_once = at_once  # a worker: it may run for days, storing a few articles an hour
        self.early = early  # a large import: start with its first lease (see leased_one)
        if at_once:
            self.start()

    def leased_one(self) -> None:
        """An article is about to go to the model: a large import's matcher starts now and
        loads its modules on the other core while the first requests are out (not when
        nothing is to be extracted: a re-import, unreadable files)."""
        if self.early:
            self.start()

    def stored_one(self) -> None:
        self.stored += 1
        if self.at_once or self.stored >= MATCHER_AFTER:
            self.start()

    def start(self) -> None:
        """Start the matcher process, or start it again if it was killed (the OOM killer)."""
        if self.process is None or not self.process.is_alive():
            import multiprocessing

            from tracker.matching import matcher_process

            context = multiprocessing.get_context("spawn")  # no threads copied by a fork
            self.stop = context.Event()
            self.process = context.Process(
                target=matcher_process,
                args=(
                    self.settings.database_url,
                    self.settings.match_suggest,
                    self.settings.match_link,
                    self.stop,
                    os.getpid(),
                ),
                name="tracker-matcher",
                daemon=True,
            )
            self.process.start()

    def finish(self) -> None:
        """Wait for the matcher to catch up, then compare anything still left here."""
        from tracker.matching import match_pending

        if self.process is not None:
            self.stop.set()
            self.process.join()
        match_pending(self.engine, self.settings.match_suggest, self.settings.match_link)

    def abandon(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()


@dataclass
class ItemReport:
    """What happened to one input."""

    source: str
    # extracted, failed, skipped, invalid (unreadable input), duplicate, busy (another
    # import holds the article's lease: it is extracting it)
    state: str
    article_id: int | None = None
    title: str | None = None
    claims: int = 0
    dropped: int = 0
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    warnings: list[str] = field(default_factory=list)
    drop_reasons: list[str] = field(default_factory=list)  # why each dropped claim was
    batch_prompt_tokens: int = 0  # of the tokens, those answered by a Batch API batch
    batch_completion_tokens: int = 0

    @classmethod
    def of(cls, job: Job, outcome: ImportOutcome) -> ItemReport:
        """The report of a job's outcome (stored, failed, or nothing to do)."""
        return cls(
            job.source,
            outcome.state,
            outcome.article_id,
            outcome.title,
            outcome.claims,
            outcome.dropped,
            outcome.error,
            outcome.prompt_tokens,
            outcome.completion_tokens,
            warnings=job.warnings,
            drop_reasons=outcome.drop_reasons,
            batch_prompt_tokens=outcome.batch_prompt_tokens,
            batch_completion_tokens=outcome.batch_completion_tokens,
        )


@dataclass
class BatchReport:
    items: list[ItemReport] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str | None = None  # why the batch stopped early, if it did
    throttles: int = 0  # 429 answers seen
    paid: bool = True  # the extractor spends tokens (a cost is shown)

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
            "skipped": self.count("skipped", "duplicate", "busy"),
            "claims": sum(item.claims for item in self.items),
            "dropped": sum(item.dropped for item in self.items),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": cost_usd(
                settings,
                self.prompt_tokens,
                self.completion_tokens,
                batch_prompt_tokens=sum(item.batch_prompt_tokens for item in self.items),
                batch_completion_tokens=sum(item.batch_completion_tokens for item in self.items),
            )
            if self.paid
            else None,
            "seconds": round(self.seconds, 3),
            "rate_limited": self.throttles,
            "stopped": self.stopped,
            "failures": [
                {"source": f.source, "article_id": f.article_id, "reason": f.error}
                for f in self.failures
            ],
            "dropped_claims": [
                {"source": item.source, "reason": reason}
                for item in self.items
                for reason in item.drop_reasons
            ],
            "warnings": [
                {"source": item.source, "warning": warning}
                for item in self.items
                for warning in item.warnings
            ],
        }


@dataclass
class _ReaderFailed:
    error: BaseException


@dataclass
class _StorageStop:
    """Looking an input up failed in a way every later one would (the server is gone)."""

    report: ItemReport


async def run_batch(
    engine: Engine,
    items: Iterable[Item | int],
    settings: Settings,
    *,
    concurrency: int = 8,
    force: bool = False,
    retry_failed: bool = False,
    on_item: Callable[[ItemReport], None] | None = None,
    owner: str | None = None,
    extractor: Extractor | None = None,
    read_ahead: int | None = None,
    stop: threading.Event | None = None,
    match_at_once: bool = False,
    match_early: bool = False,
) -> BatchReport:
    """Import every item (an article to store, a stored article's id, or a read error).

    Raises StorageError before any model call when the database cannot be written; a
    storage fault that will repeat during the run stops it (`BatchReport.stopped`).
    `owner` names this run on the leases it takes (tracker/lease.py). `read_ahead`: how
    many inputs are read before a worker is free for them (default 4 x concurrency).
    `stop` (a worker's SIGTERM): start nothing more; what is in flight finishes, and the
    leases of what was read ahead are given back. `match_at_once` (a worker, which may run
    for days): the matcher process starts with the run, not after MATCHER_AFTER articles,
    so claims are compared while it runs, and those a killed run left are compared too.
    `match_early` (an import of at least MATCHER_AFTER inputs): it starts with the first
    article leased for extraction.
    """
    owner = owner or lease.new_owner()
    check_writable(engine)
    watch = SQLiteFileWatch(engine)  # a database file deleted mid-run stops the run
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[Any] = asyncio.Queue()
    room = threading.Semaphore(read_ahead or 4 * concurrency)  # so no worker waits on a disk
    halt = threading.Event()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-db")
    extractor = extractor or make_extractor(settings, engine=engine, concurrency=concurrency)
    report = BatchReport(paid=extractor.paid)
    started = time.monotonic()
    since = utcnow()  # a --force leaves alone what another run extracted after this

    def hand_over(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the batch is over
            loop.call_soon_threadsafe(ready.put_nowait, item)

    def read() -> None:
        """Read, parse and look up every input, ahead of the workers."""
        seen_texts: set[str] = set()
        seen_ids: set[int] = set()
        try:
            for item in items:
                while not room.acquire(timeout=0.1):
                    if halt.is_set():
                        return
                if halt.is_set():
                    return
                hand_over(_prepare(engine, item, seen_texts, seen_ids))
        except BaseException as exc:  # a bug, not bad input: surface it in the loop
            hand_over(_ReaderFailed(exc))
        finally:
            hand_over(_DONE)

    storing: set[asyncio.Task[None]] = set()
    write_slots = asyncio.Semaphore(concurrency)  # results waiting for the writer, at most

    def done(item_report: ItemReport) -> None:
        report.items.append(item_report)
        if on_item:
            on_item(item_report)

    def stop_for_storage(reason: str) -> None:
        if not report.stopped:
            report.stopped = f"the database cannot be written: {reason}"
        halt.set()

    def failed(job: Job, exc: BaseException) -> ItemReport:
        """A database step that failed: the item's one-line error (no SQL, no text)."""
        reason, lasting = storage_problem(exc)
        if lasting and report.stopped:  # the reason is said once, with the stop
            reason = "not stored: the run stopped (the database could not be written)"
        if lasting or isinstance(exc, StorageError):
            stop_for_storage(reason)
        return ItemReport(
            job.source, "failed", job.article_id, job.title, error=reason, warnings=job.warnings
        )

    def watched(step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        watch.check()
        return step(*args, **kwargs)

    async def store_in_writer(extracted: Extracted) -> None:
        job = extracted.job
        try:
            outcome = await loop.run_in_executor(writer, watched, store, engine, extracted)
            done(ItemReport.of(job, outcome))
            if outcome.claims:
                matcher.stored_one()
        except Exception as exc:  # e.g. the database is gone: this item fails
            done(failed(job, exc))
        finally:
            write_slots.release()

    leased: asyncio.Queue[Any] = asyncio.Queue()
    ahead = asyncio.Semaphore(lease_ahead_of(concurrency))  # leased, not yet with a worker

    async def lease_ahead() -> None:
        """Take the next articles' leases before a worker is free for them. A worker with
        a model answer then sends its next request at once, instead of waiting for the
        writer thread behind every other worker's answer: with fixed latency the workers
        otherwise moved in lockstep waves, each wave a quarter second late."""
        try:
            await take_leases()
        except Exception as exc:  # a bug: surfaced in a worker, as the reader's are
            leased.put_nowait(_ReaderFailed(exc))
        finally:  # every worker waiting for an article ends (after a stop, too)
            leased.put_nowait(_DONE)

    async def take_leases() -> None:
        while not report.stopped:
            item = await ready.get()
            if item is _DONE:
                return
            if isinstance(item, _ReaderFailed | _StorageStop):
                leased.put_nowait(item)
                return
            room.release()
            if isinstance(item, ItemReport):  # unreadable, or a repeat
                leased.put_nowait(item)
                continue
            if stop is not None and stop.is_set():
                return
            if item.article_id is not None and (
                skip := nothing_to_do(item, force=force, retry_failed=retry_failed or force)
            ):  # as the reader found it: no lease, no write (a re-import of 1,000 is reads)
                leased.put_nowait(ItemReport.of(item, skip))
                continue
            await ahead.acquire()
            try:  # the lease, before any model call
                claimed = await loop.run_in_executor(
                    writer,
                    functools.partial(
                        watched, claim, engine, item, owner, settings,
                        force=force, retry_failed=retry_failed or force, since=since,
                    ),
                )  # fmt: skip
            except Exception as exc:
                ahead.release()
                leased.put_nowait(failed(item, exc))
                continue
            if isinstance(claimed, ImportOutcome):  # nothing to do, or another run's
                ahead.release()
                leased.put_nowait(ItemReport.of(item, claimed))
                continue
            leased.put_nowait(claimed)
            matcher.leased_one()

    async def work() -> None:
        while not report.stopped:
            item = await leased.get()
            if item is _DONE:
                leased.put_nowait(_DONE)  # for the next worker
                return
            if isinstance(item, _ReaderFailed):
                raise item.error
            if isinstance(item, ItemReport):  # unreadable, a repeat, nothing to do
                done(item)
                continue
            if isinstance(item, _StorageStop):  # the database went away while reading
                done(item.report)
                stop_for_storage(item.report.error or "")
                return
            ahead.release()
            claimed = item
            assert claimed.article_id is not None
            if report.stopped or (stop is not None and stop.is_set()):
                return  # (its lease is given back with the others at the end)
            try:
                extracted = await extract_job(
                    claimed, settings, extractor, force=force, retry_failed=retry_failed or force
                )
            except Exception as exc:  # a bug on odd text: this article's failure, not the run's
                extracted = Extracted(
                    claimed, settings, failure=ExtractionFailed(_unexpected(exc), [])
                )
            if isinstance(extracted, ImportOutcome):  # (claim checked this already)
                done(ItemReport.of(claimed, extracted))
                continue
            if extracted.failure and extracted.failure.fatal and not report.stopped:
                report.stopped = extracted.failure.reason
            # The write goes to the writer thread; this worker moves on to the next article
            # at once instead of queueing behind other workers' writes.
            await write_slots.acquire()
            task = asyncio.create_task(store_in_writer(extracted))
            storing.add(task)
            task.add_done_callback(storing.discard)

    async def keep_leases() -> None:
        """Renew this run's leases, well before they run out."""
        while True:
            await asyncio.sleep(settings.worker_lease / 3)
            with contextlib.suppress(Exception):  # a failed renewal: the store reports it
                await loop.run_in_executor(
                    writer, lease.renew_all, engine, owner, settings.worker_lease
                )

    matcher = _Matcher(engine, settings, at_once=match_at_once, early=match_early)
    reader = threading.Thread(target=read, name="tracker-reader", daemon=True)
    reader.start()
    renewing = asyncio.create_task(keep_leases())
    leasing = asyncio.create_task(lease_ahead())
    try:
        await asyncio.gather(*(work() for _ in range(concurrency)))
        await asyncio.gather(*storing)
        if not halt.is_set():  # the new claims compared with earlier ones, all of them,
            # unless the database cannot be written (a bad key stops the run, not this)
            with contextlib.suppress(Exception):  # (any later run catches up otherwise)
                await loop.run_in_executor(None, matcher.finish)
    finally:
        matcher.abandon()
        halt.set()
        renewing.cancel()
        leasing.cancel()
        report.throttles = extractor.throttles
        report.seconds = time.monotonic() - started
        await extractor.close()
        writer.shutdown(wait=True)
        with contextlib.suppress(Exception):  # what this run still holds (stopped, Ctrl-C)
            lease.release_all(engine, owner)
    return report


def lease_ahead_of(concurrency: int) -> int:
    """How many articles a run leases before a worker is free for them: enough to keep the
    workers out of step (a few), few enough that a killed run's leases hold up little."""
    return max(2, concurrency // 4)


def _prepare(
    engine: Engine, item: Item | int, seen_texts: set[str], seen_ids: set[int]
) -> Job | ItemReport | _StorageStop:
    """What a worker should do with an input: a job, or a report that needs no model."""
    if isinstance(item, ReadError):
        return ItemReport(item.source, "invalid", error=item.reason)
    source = item.source_path or "<input>" if isinstance(item, ArticleCreate) else f"article {item}"
    try:
        if isinstance(item, ArticleCreate):
            digest = content_hash(item.text)
            if digest in seen_texts:
                return ItemReport(source, "duplicate", title=item.title, warnings=item.warnings)
            seen_texts.add(digest)
        job = retrying(lambda: find_job(engine, item))
    except LookupError as exc:
        return ItemReport(source, "invalid", error=str(exc))
    except Exception as exc:  # the database refused a read or a metadata update
        reason, lasting = storage_problem(exc)
        failed = ItemReport(source, "failed", error=reason)
        return _StorageStop(failed) if lasting else failed
    if job.article_id is not None:
        if job.article_id in seen_ids:
            return ItemReport(job.source, "duplicate", job.article_id, job.title)
        seen_ids.add(job.article_id)
    return job


def _unexpected(exc: Exception) -> str:
    """An unexpected error as an article's reason: its kind and the first line of its
    message, never the values it carries (a ValidationError's would be article text)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"extraction failed: {exc.title} {where}: {first['msg']}"[:300]
    message = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"extraction failed: {type(exc).__name__}" + (f": {message}" if message else "")


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
    batch_api: bool = False  # priced as the Batch API's (re-asks, not estimated, are not)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["invalid"] = [{"source": e.source, "reason": e.reason} for e in self.invalid]
        return data


# Rough and stated as such: ~4 characters a token in English; answers run about a
# tenth of what is sent (a list of short claims).
CHARS_PER_TOKEN = 4
ANSWER_SHARE = 0.1


def plan_batch(
    engine: Engine,
    items: Iterable[Item | int],
    settings: Settings,
    *,
    force: bool = False,
    retry_failed: bool = False,
    batch_api: bool = False,
) -> Plan:
    """Read, validate, de-duplicate, count and estimate tokens for an import, skipping
    exactly what the real run would skip (the same rule: `ingest.nothing_to_do`).
    `batch_api`: the first requests go through the Batch API, at its price."""
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
            if isinstance(item, int):
                stored = session.get(Article, item)
                if stored is None:
                    continue
                text, digest, state = stored.text, stored.content_hash, stored.extraction_state
            else:
                text, digest = item.text, content_hash(item.text)
                state = session.exec(
                    select(Article.extraction_state).where(Article.content_hash == digest)
                ).first()
            if digest in seen:
                plan.duplicates += 1
                continue
            seen.add(digest)
            job = Job(text, None, "", state=state)
            if nothing_to_do(job, force=force, retry_failed=retry_failed or force):
                if state == "failed":
                    plan.previously_failed += 1
                else:
                    plan.already_extracted += 1
                continue
            plan.new += 1
            if settings.uses_offline:
                continue  # no model, no tokens
            chunks = split_into_chunks(text, settings.chunk_chars, settings.chunk_overlap_chars)
            sent = sum(overhead + len(c.text) for c in chunks) // CHARS_PER_TOKEN
            plan.chunks += len(chunks)
            plan.prompt_tokens += sent
            plan.completion_tokens += int(sent * ANSWER_SHARE)
    batched = (plan.prompt_tokens, plan.completion_tokens) if batch_api else (0, 0)
    plan.cost_usd = cost_usd(
        settings,
        plan.prompt_tokens,
        plan.completion_tokens,
        batch_prompt_tokens=batched[0],
        batch_completion_tokens=batched[1],
    )
    plan.batch_api = batch_api
    return plan
