"""The OpenAI Batch API for archives: `tracker import --batch-api` and `tracker batches`.

The first request about each chunk of each article goes into a JSONL file, uploaded
(`/v1/files`) and submitted (`/v1/batches`): half the price of ordinary calls, and no rate
limit to manage. A run over `batch_max_requests` or `batch_max_bytes` (under the server's
limits, 50,000 requests and 200 MB) is split into several batches, article by article,
each submitted once full and collected in turn. Each answer then takes the path of an
ordinary call's answer (`ModelClient.check_answer`, then `extract_claims`: validation,
grounding, re-asks, which are ordinary calls) and is stored by `ingest.store`; the new
claims are matched at the end.

Resumable: the batch and one row per request are stored before any wait, and the batch's
articles hold a lease named `batch-api:<id>` for the whole completion window, so neither
`tracker worker` nor another import extracts them meanwhile. A run killed while it waits
leaves the batch to `tracker batches --resume`, or to the same import run again, which
collects it instead of submitting another. The run waiting on a batch is its `collector`
(a lease owner name, tracker/lease.py): two runs never collect one batch at once, and a
killed run's batch is taken over at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker import lease
from tracker.batch import BatchReport, ItemReport, _prepare, _StorageStop
from tracker.config import Settings
from tracker.db import session_scope
from tracker.extract import first_requests
from tracker.ingest import Extracted, ImportOutcome, Job, claim, find_job, known_response_format
from tracker.ingest import store as store_outcome
from tracker.llm import CallRecord, ModelClient, request_body
from tracker.models import ApiBatch, ApiBatchRequest, Article, utcnow
from tracker.readers import Item
from tracker.results import ExtractionFailed
from tracker.sanitize import scrub, storable

ENDPOINT = "/v1/chat/completions"
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
ENDED = ("completed", "failed", "expired", "cancelled")
# A batch's articles stay leased for its 24-hour window and some time to collect it.
LEASE_SECONDS = 26 * 3600
# Settings that shape the requests: a later run collects with the ones the batch was sent
# with, so its chunks and re-asks are the same whatever that run's environment says.
OPTIONS = (
    "model",
    "temperature",
    "max_output_tokens",
    "chunk_chars",
    "chunk_overlap_chars",
    "prefilter",
    "max_reasks",
)


class BatchApiError(Exception):
    """A Batch API step the server refused (no Batch API there, a bad key, ...)."""


def lease_name(batch_id: int) -> str:
    """The lease owner of a batch's articles: never taken for a dead process's
    (`lease._dead` needs host:pid:identity:token), so it holds until it runs out."""
    return f"{lease.BATCH_PREFIX}{batch_id}"


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive UTC times."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class BatchRow:
    """A stored batch as `tracker batches` shows it."""

    id: int
    provider_id: str | None
    status: str
    articles: int
    requests_total: int
    requests_completed: int
    requests_failed: int
    created_at: datetime
    collected_at: datetime | None
    error: str | None


def list_batches(engine: Engine) -> list[BatchRow]:
    """Every stored batch, newest first, with how many articles it holds."""
    with Session(engine) as session:
        counts = dict(
            session.exec(
                select(
                    ApiBatchRequest.batch_id,
                    sa.func.count(sa.distinct(ApiBatchRequest.article_id)),
                ).group_by(ApiBatchRequest.batch_id)
            ).all()
        )
        batches = session.exec(select(ApiBatch).order_by(ApiBatch.id.desc())).all()
        return [
            BatchRow(
                b.id,
                b.provider_id,
                b.status,
                counts.get(b.id, 0),
                b.requests_total,
                b.requests_completed,
                b.requests_failed,
                b.created_at,
                b.collected_at,
                b.error,
            )
            for b in batches
            if b.id is not None
        ]


def open_batches(engine: Engine) -> list[int]:
    """Batches not collected yet (running, or ended since the last look)."""
    with Session(engine) as session:
        query = select(ApiBatch.id).where(
            ApiBatch.collected_at.is_(None), ApiBatch.status != "abandoned"
        )
        return list(session.exec(query.order_by(ApiBatch.id)).all())


@dataclass
class _Answered:
    """The model client as extract_claims sees it during collection: the first request
    about each chunk was answered by the batch (checked here as an ordinary answer is);
    any other request (a re-ask, a chunk split after a cut-off) is an ordinary call."""

    client: ModelClient
    settings: Settings
    provider_id: str
    fmt: str
    answers: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def gate(self) -> Any:
        return self.client.gate

    async def chat(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> CallRecord:
        waiting = self.answers.get(_key(messages))
        if not waiting:
            return await self.client.chat(messages, schema)
        record = CallRecord(
            model=self.settings.model,
            base_url=self.settings.safe_base_url,
            response_format=self.fmt,
            request=request_body(self.settings, messages, schema, self.fmt),
            status_code=200,
            batch_id=self.provider_id,
        )
        return self.client.check_answer(record, waiting.pop(0))

    async def close(self) -> None:
        return None


def _key(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


@dataclass
class _Pending:
    """A batch this run is filling: its JSONL lines and request rows, and the articles
    with nothing to ask (leased to it all the same)."""

    id: int
    lines: list[bytes] = field(default_factory=list)
    rows: list[ApiBatchRequest] = field(default_factory=list)
    empty: list[Job] = field(default_factory=list)
    size: int = 0  # bytes of JSONL


def _lines(
    batch_id: int, article_id: int, bodies: list[dict[str, Any]]
) -> tuple[list[bytes], list[ApiBatchRequest]]:
    """An article's first requests as the batch's JSONL lines, and their rows."""
    lines: list[bytes] = []
    rows: list[ApiBatchRequest] = []
    for number, body in enumerate(bodies, 1):
        custom_id = f"article-{article_id}-chunk-{number}-batch-{batch_id}"
        line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
        lines.append((json.dumps(line, ensure_ascii=False) + "\n").encode())
        rows.append(
            ApiBatchRequest(
                batch_id=batch_id, custom_id=custom_id, article_id=article_id, chunk=number
            )
        )
    return lines, rows


class BatchApiRun:
    """One run of the Batch API path: submit, wait, collect; or resume and cancel.

    `on_item` sees each article's report; `on_status` a line for people (a batch
    submitted, its status, why it waits)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        concurrency: int | None = None,
        on_item: Callable[[ItemReport], None] | None = None,
        on_status: Callable[[str], None] | None = None,
        collector: str | None = None,
    ) -> None:
        self.engine, self.settings = engine, settings
        self.concurrency = concurrency or settings.concurrency
        self.on_item = on_item or (lambda item: None)
        self.on_status = on_status or (lambda line: None)
        self.collector = collector or lease.new_owner()
        self.report = BatchReport()
        self.sources: dict[int, str] = {}  # article id -> the input it came from
        self.submitted = 0  # batches this run sent to the server
        self.started = time.monotonic()
        self._refusal = ""  # why the server refused the batch being collected, if it did
        self._lost = ""  # why a file of the batch being collected could not be downloaded
        self._preparing: int | None = None  # a batch this run has not submitted yet
        self._client: ModelClient | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-db")

    def _model(self, settings: Settings, fmt: str | None = None) -> ModelClient:
        if self._client is None:
            known = fmt or known_response_format(self.engine, settings)
            self._client = ModelClient(settings, concurrency=self.concurrency, known_format=known)
        return self._client

    async def close(self) -> None:
        self.report.seconds = time.monotonic() - self.started
        if self._client is not None:
            await self._client.close()
        self._writer.shutdown(wait=True)
        if self._preparing is not None:  # stopped (Ctrl-C, an error) before submitting it:
            self._abandon(self._preparing, "the run stopped before it was submitted")
        # Whatever happened, this run no longer waits on any batch: another may collect.
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(ApiBatch)
                .where(ApiBatch.collector == self.collector)
                .values(collector=None, collector_expires_at=None)
            )

    def _done(self, item: ItemReport) -> None:
        self.report.items.append(item)
        self.on_item(item)

    async def _db(self, step: Callable[..., Any], *args: Any) -> Any:
        """A database step, in the one writer thread (SQLite has one writer anyway)."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, step, *args)

    # --- Importing ------------------------------------------------------------------------

    async def import_items(
        self, items: Iterable[Item | int], *, force: bool = False, retry_failed: bool = False
    ) -> BatchReport:
        """Collect the batches earlier runs left, then submit batches for what still needs
        extracting among `items` (a new one whenever the next article would take one past
        TRACKER_BATCH_MAX_REQUESTS or TRACKER_BATCH_MAX_BYTES), wait for them and collect
        them in turn."""
        for batch_id in open_batches(self.engine):
            await self.resume(batch_id)
        submitted: list[int] = []
        try:
            await self._fill(items, submitted, force=force, retry_failed=retry_failed)
        except BatchApiError as refused:
            if not submitted:
                raise
            # The batches already at the server still run: collected below, then the stop.
            self.report.stopped = str(refused)
            self.on_status(
                f"{refused}; its articles are pending. Collecting the {len(submitted)} "
                "batch(es) already submitted."
            )
        for batch_id in submitted:
            if not await self._db(self._take, batch_id):  # (its claim lapsed meanwhile)
                self.on_status(f"Batch {batch_id} is being collected by another run; left to it.")
                continue
            await self._follow(batch_id)
        return self.report

    async def _fill(
        self, items: Iterable[Item | int], submitted: list[int], *, force: bool, retry_failed: bool
    ) -> None:
        """Claim the articles for a batch and write their requests, submitting the batch
        when the next article would overflow it and going on with a new one. An article's
        requests all go into one batch; one too big for any batch is that article's error.
        The ids of the batches sent to the server are added to `submitted`."""
        from tracker.schemas import response_schema

        limit, room = self.settings.batch_max_requests, self.settings.batch_max_bytes
        current = await self._start(force)
        leased = self.settings.model_copy(update={"worker_lease": LEASE_SECONDS})
        seen_texts: set[str] = set()
        seen_ids: set[int] = set()
        client: ModelClient | None = None
        schema = response_schema()
        for item in items:
            prepared = await self._db(_prepare, self.engine, item, seen_texts, seen_ids)
            if isinstance(prepared, ItemReport):
                self._done(prepared)
                continue
            if isinstance(prepared, _StorageStop):  # the database went away while reading
                self._done(prepared.report)
                self.report.stopped = prepared.report.error
                break
            job = prepared
            owner = lease_name(current.id)
            claimed = await self._db(
                lambda j=job, o=owner: claim(
                    self.engine, j, o, leased, force=force, retry_failed=retry_failed or force
                )
            )
            if isinstance(claimed, ImportOutcome):
                self._done(ItemReport.of(job, claimed))
                continue
            assert claimed.article_id is not None
            self.sources[claimed.article_id] = claimed.source
            client = client or self._model(self.settings)
            bodies = [
                request_body(self.settings, messages, schema, client.format)
                for messages in first_requests(claimed.text, claimed.title, self.settings)
            ]
            if not bodies:  # nothing to ask (e.g. the prefilter kept no paragraph)
                current.empty.append(claimed)
                continue
            lines, rows = _lines(current.id, claimed.article_id, bodies)
            size = sum(map(len, lines))
            if (
                len(lines) <= limit
                and size <= room
                and current.lines
                and (len(current.lines) + len(lines) > limit or current.size + size > room)
            ):  # full: sent now, and this article starts the next batch
                await self._submit(current)
                submitted.append(current.id)
                current = await self._start(force)
                await self._db(self._move, claimed.article_id, owner, lease_name(current.id))
                claimed.lease_owner = lease_name(current.id)
                lines, rows = _lines(current.id, claimed.article_id, bodies)
                size = sum(map(len, lines))
            if len(lines) > limit or size > room:  # alone: no batch could hold it
                reason = (
                    f"its {len(lines)} request(s) ({size:,} bytes of JSONL) are more than one "
                    f"batch may hold (TRACKER_BATCH_MAX_REQUESTS={limit}, "
                    f"TRACKER_BATCH_MAX_BYTES={room}): it is pending, for an import without "
                    "--batch-api"
                )
                answered = _Answered(client, self.settings, "", client.format)
                await self._extract_and_store(
                    claimed, answered, ExtractionFailed(reason, [], pending=True)
                )
                continue
            current.lines += lines
            current.rows += rows
            current.size += size
        if not current.lines and not current.empty:
            await self._db(self._forget, current.id)
            self._preparing = None
        elif await self._submit(current):
            submitted.append(current.id)

    async def _start(self, force: bool) -> _Pending:
        """A new batch row, which this run fills before submitting it."""
        batch_id = await self._db(self._new_batch, force)
        self._preparing = batch_id
        return _Pending(batch_id)

    def _new_batch(self, force: bool) -> int:
        options = {name: getattr(self.settings, name) for name in OPTIONS} | {"force": force}
        with session_scope(self.engine) as session:
            batch = ApiBatch(
                base_url=self.settings.safe_base_url,
                model=self.settings.model,
                response_format="json_schema",  # set when its requests are written
                prompt_hash="",
                options=json.dumps(options),
                collector=self.collector,
                collector_expires_at=utcnow() + timedelta(seconds=self._hold),
            )
            session.add(batch)
            session.flush()
            assert batch.id is not None
            return batch.id

    def _forget(self, batch_id: int) -> None:
        with session_scope(self.engine) as session:
            session.exec(sa.delete(ApiBatch).where(ApiBatch.id == batch_id))

    def _move(self, article_id: int, owner: str, to: str) -> None:
        """An article's lease handed from a full batch to the next one."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(Article)
                .where(Article.id == article_id, Article.lease_owner == owner)
                .values(lease_owner=to)
            )

    async def _submit(self, pending: _Pending) -> bool:
        """The requests stored, then uploaded and submitted; the provider's ids stored at
        once. A refusal abandons the batch: its articles are pending again. False when
        there was nothing to send (only articles with nothing to ask)."""
        import openai

        from tracker.prompts import load_prompts

        batch_id, rows = pending.id, pending.rows
        client = self._model(self.settings)
        fmt = client.format
        for job in pending.empty:
            await self._extract_and_store(job, _Answered(client, self.settings, "", fmt), None)

        def stored_requests() -> None:
            with session_scope(self.engine) as session:
                session.add_all(rows)
                batch = session.get(ApiBatch, batch_id)
                assert batch is not None
                batch.response_format, batch.prompt_hash = fmt, load_prompts().hash
                batch.requests_total = len(rows)
                session.add(batch)

        articles = len({row.article_id for row in rows})
        await self._db(stored_requests)
        if not pending.lines:
            self._preparing = None
            await self._db(self._finish, batch_id, "completed", None)
            return False
        content = b"".join(pending.lines)
        try:
            uploaded = await client.client.files.create(
                file=(f"tracker-batch-{batch_id}.jsonl", content, "application/jsonl"),
                purpose="batch",
            )
            await self._db(self._update, batch_id, {"input_file_id": uploaded.id})
            self._preparing = None  # from here on a later run looks for it at the server
            remote = await client.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"tracker_batch": str(batch_id)},
            )
        except openai.APIError as exc:
            reason = self._scrub(f"the server refused the batch: {_api_message(exc)}")
            self._preparing = None
            await self._db(self._abandon, batch_id, reason)
            raise BatchApiError(reason) from None
        await self._db(self._record_remote, batch_id, remote, {"submitted_at": utcnow()})
        self.submitted += 1
        self.on_status(
            f"Batch {batch_id} submitted ({remote.id}): {len(pending.lines)} request(s) for "
            f"{articles} article(s), answered within 24 h at half the price."
        )
        return True

    # --- Waiting and collecting -----------------------------------------------------------

    async def resume(self, batch_id: int) -> bool:
        """Pick up a stored batch: wait for it if it runs, collect it if it ended. False
        when another live run is on it (or it is collected already)."""
        batch = await self._db(self._load, batch_id)
        if batch is None or batch.collected_at is not None or batch.status == "abandoned":
            return False
        if not await self._db(self._take, batch_id):
            self.on_status(f"Batch {batch_id} is being collected by another run; left to it.")
            return False
        if batch.provider_id is None and not await self._recover(batch):
            return False
        await self._follow(batch_id)
        return True

    async def cancel(self, batch_id: int) -> bool:
        """Ask the server to cancel a batch, then collect what it had answered (the rest
        of its articles are pending again)."""
        batch = await self._db(self._load, batch_id)
        if batch is None or batch.collected_at is not None:
            return False
        if not await self._db(self._take, batch_id):
            self.on_status(f"Batch {batch_id} is being collected by another run; left to it.")
            return False
        if batch.provider_id is None and not await self._recover(batch):
            return True
        settings = self._batch_settings(batch)
        client = self._model(settings, batch.response_format)
        remote = await client.client.batches.cancel(batch.provider_id)
        await self._db(self._record_remote, batch_id, remote, {})
        self.on_status(f"Batch {batch_id} ({batch.provider_id}): cancel requested.")
        await self._follow(batch_id)
        return True

    async def _recover(self, batch: ApiBatch) -> bool:
        """A batch whose run stopped before the server's batch id was stored: found among
        the server's batches by its input file, or abandoned (its articles pending again)."""
        assert batch.id is not None
        if batch.input_file_id:
            client = self._model(self._batch_settings(batch), batch.response_format)
            async for remote in client.client.batches.list(limit=100):
                if remote.input_file_id == batch.input_file_id:
                    await self._db(self._record_remote, batch.id, remote, {})
                    return True
        await self._db(
            self._abandon, batch.id, "the run preparing it stopped before it was submitted"
        )
        self.on_status(f"Batch {batch.id} was never submitted; its articles are pending again.")
        return False

    async def _follow(self, batch_id: int) -> None:
        """Wait until the batch ends (looking less often as it runs), then collect it."""
        batch = await self._db(self._load, batch_id)
        assert batch is not None and batch.provider_id is not None
        settings = self._batch_settings(batch)
        client = self._model(settings, batch.response_format)
        interval = self.settings.batch_poll_interval
        delay = interval
        status = batch.status
        while True:
            remote = await client.client.batches.retrieve(batch.provider_id)
            await self._db(self._record_remote, batch_id, remote, {})
            if remote.status != status:
                status = remote.status
                counts = remote.request_counts
                done = ""
                if counts and counts.total:
                    done = f" ({counts.completed} of {counts.total} answered"
                    done += f", {counts.failed} failed)" if counts.failed else ")"
                self.on_status(f"Batch {batch_id} ({batch.provider_id}): {status}{done}")
            if remote.status in ENDED:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, interval * 10)
        await self._collect(batch_id, remote, settings)

    async def _collect(self, batch_id: int, remote: Any, settings: Settings) -> None:
        """Every uncollected request's answer through the ordinary path, article by
        article; what has no answer is the article's error."""
        client = self._model(settings)
        self._lost = ""
        output = await self._download(client, remote.output_file_id)
        errors = await self._download(client, remote.error_file_id)
        batch = await self._db(self._load, batch_id)
        assert batch is not None
        options = json.loads(batch.options)
        rows = await self._db(self._uncollected, batch_id)
        by_article: dict[int, list[ApiBatchRequest]] = {}
        for row in rows:
            by_article.setdefault(row.article_id, []).append(row)
        room = asyncio.Semaphore(self.concurrency)
        self._refusal = self._scrub(_batch_errors(remote) or "the server refused the batch")
        if remote.status == "failed":  # a setup fault (model, file): the next batch too
            self.report.stopped = self._refusal

        async def one(article_id: int, requests: list[ApiBatchRequest]) -> None:
            async with room:
                await self._collect_article(
                    batch,
                    remote,
                    settings,
                    client,
                    article_id,
                    requests,
                    output,
                    errors,
                    force=bool(options.get("force")),
                )

        await asyncio.gather(*(one(a, r) for a, r in sorted(by_article.items())))
        await self._db(self._finish, batch_id, remote.status, _batch_errors(remote))
        from tracker.matching import match_pending

        await asyncio.to_thread(
            match_pending, self.engine, settings.match_suggest, settings.match_link
        )

    async def _collect_article(
        self,
        batch: ApiBatch,
        remote: Any,
        settings: Settings,
        client: ModelClient,
        article_id: int,
        requests: list[ApiBatchRequest],
        output: dict[str, dict[str, Any]],
        errors: dict[str, dict[str, Any]],
        *,
        force: bool,
    ) -> None:
        assert batch.id is not None and batch.provider_id is not None
        ids = [r.id for r in requests]
        try:
            job = await self._db(find_job, self.engine, article_id)
        except LookupError:  # the article was deleted meanwhile
            await self._db(self._mark_collected, ids)
            return
        job.source = self.sources.get(article_id, job.source)
        job.lease_owner = lease_name(batch.id)
        if job.state == "extracted" and not force:  # (collected before a kill, say)
            await self._db(self._mark_collected, ids)
            await self._db(self._release, article_id, lease_name(batch.id))
            self._done(ItemReport(job.source, "skipped", article_id, job.title))
            return
        answered = _Answered(client, settings, batch.provider_id, batch.response_format)
        chunks = first_requests(job.text, job.title, settings)
        failure: ExtractionFailed | None = None
        for request in sorted(requests, key=lambda r: r.chunk):
            if request.chunk > len(chunks):
                continue  # the chunking changed since (a different version): asked again
            messages = chunks[request.chunk - 1]
            line = output.get(request.custom_id) or errors.get(request.custom_id)
            problem = self._problem(line, remote.status, request.custom_id)
            if problem is None:
                assert line is not None
                answered.answers.setdefault(_key(messages), []).append(line["response"]["body"])
                continue
            reason, pending = problem
            record = CallRecord(
                model=settings.model,
                base_url=settings.safe_base_url,
                response_format=batch.response_format,
                request=request_body(settings, messages, _schema(), batch.response_format),
                status_code=_status_code(line),
                response=self._scrub(json.dumps(line, ensure_ascii=False)) if line else None,
                error=reason,
                batch_id=batch.provider_id,
            )
            failure = ExtractionFailed(reason, [record], pending=pending)
            break
        await self._extract_and_store(job, answered, failure)
        await self._db(self._mark_collected, ids)

    async def _extract_and_store(
        self, job: Job, answered: _Answered, failure: ExtractionFailed | None
    ) -> None:
        from tracker.extractors import ModelExtractor
        from tracker.results import ExtractionResult

        result: ExtractionResult | None = None
        if failure is None:
            try:
                result = await ModelExtractor(answered.settings, answered).extract(  # type: ignore[arg-type]
                    job.text, title=job.title
                )
            except ExtractionFailed as failed:
                failure = failed
        extracted = Extracted(job, answered.settings, result=result, failure=failure)
        outcome = await self._db(store_outcome, self.engine, extracted)
        self._done(ItemReport.of(job, outcome))

    def _problem(
        self, line: dict[str, Any] | None, status: str, custom_id: str
    ) -> tuple[str, bool] | None:
        """Why a request has no usable answer in the batch's files, and whether its article
        should wait for a later run (pending) rather than fail; None for an answer."""
        if line is None:
            if self._lost:
                return f"{self._lost}: the article is pending again, for the next import", True
            if status == "expired":
                return (
                    "the batch expired before this article was answered: it is pending "
                    "again, for the next import",
                    True,
                )
            if status == "cancelled":
                return (
                    "the batch was cancelled before this article was answered: it is "
                    "pending again, for the next import",
                    True,
                )
            if status == "failed":
                return f"{self._refusal}; the article is pending again", True
            return f"the batch's output has no answer for request {custom_id}", False
        error = line.get("error")
        response = line.get("response")
        response = response if isinstance(response, dict) else {}
        if error:
            if not isinstance(error, dict):  # a malformed line: its text as the message
                error = {"message": str(error)[:300]}
            code, message = error.get("code"), error.get("message") or ""
            if code == "batch_expired":
                return (
                    "the batch expired before this article was answered: it is pending "
                    "again, for the next import",
                    True,
                )
            return self._scrub(f"the batch request failed ({code}): {message}"[:500]), False
        if response.get("status_code") != 200:
            body = response.get("body")
            found = body.get("error") if isinstance(body, dict) else body
            message = found.get("message") if isinstance(found, dict) else found
            return self._scrub(
                f"the batch request failed (HTTP {response.get('status_code')}): {message}"[:500]
            ), False
        if not isinstance(response.get("body"), dict):
            return f"the batch's output line for request {custom_id} holds no answer", False
        return None

    async def _download(self, client: ModelClient, file_id: str | None) -> dict[str, Any]:
        """A batch output or error file: its lines by custom_id."""
        import openai

        if not file_id:
            return {}
        try:
            content = await client.client.files.content(file_id)
        except openai.NotFoundError:  # deleted, or past the provider's retention
            self._lost = f"the batch's file {file_id} is gone from the server"
            return {}
        lines: dict[str, Any] = {}
        for raw in content.text.split("\n"):  # not splitlines(): U+2028 may be in a string
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a broken line: its request counts as unanswered
            if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
                continue
            if _answered(line) or not _answered(lines.get(line["custom_id"])):
                lines[line["custom_id"]] = line  # (a repeat never hides an answer)
        return lines

    # --- The database ---------------------------------------------------------------------

    @property
    def _hold(self) -> float:
        """How long this run's claim on a batch lasts unrenewed: past the longest wait
        between two looks at it (each look renews it)."""
        return self.settings.worker_lease + 10 * self.settings.batch_poll_interval

    def _scrub(self, text: str) -> str:
        return storable(scrub(text, self.settings.secrets()))

    def _batch_settings(self, batch: ApiBatch) -> Settings:
        options = json.loads(batch.options or "{}")
        return self.settings.model_copy(update={k: v for k, v in options.items() if k in OPTIONS})

    def _load(self, batch_id: int) -> ApiBatch | None:
        with Session(self.engine) as session:
            return session.get(ApiBatch, batch_id)

    def _take(self, batch_id: int) -> bool:
        """Become the batch's collector, unless another live run is."""
        now = utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(ApiBatch.collector, ApiBatch.collector_expires_at).where(
                    ApiBatch.id == batch_id
                )
            ).one_or_none()
            if row is None:
                return False
            holder, until = row
            free = (
                holder is None
                or holder == self.collector
                or until is None
                or _aware(until) < now  # type: ignore[operator]
                or lease._dead(holder)
            )
            if not free:
                return False
            same = ApiBatch.collector.is_(None) if holder is None else ApiBatch.collector == holder
            return bool(
                conn.execute(
                    sa.update(ApiBatch)
                    .where(ApiBatch.id == batch_id, same)
                    .values(
                        collector=self.collector,
                        collector_expires_at=now + timedelta(seconds=self._hold),
                    )
                ).rowcount
            )

    def _update(self, batch_id: int, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(ApiBatch).where(ApiBatch.id == batch_id).values(**values))

    def _record_remote(self, batch_id: int, remote: Any, extra: dict[str, Any]) -> None:
        """The server's view of the batch, and this run's claim on it renewed."""
        counts = remote.request_counts
        values = {
            "provider_id": remote.id,
            "status": remote.status if remote.status in RUNNING + ENDED else "in_progress",
            "input_file_id": remote.input_file_id,
            "output_file_id": remote.output_file_id,
            "error_file_id": remote.error_file_id,
            "checked_at": utcnow(),
            "collector_expires_at": utcnow() + timedelta(seconds=self._hold),
            **extra,
        }
        if counts is not None:
            values |= {
                "requests_total": counts.total,
                "requests_completed": counts.completed,
                "requests_failed": counts.failed,
            }
        if remote.expires_at:
            values["expires_at"] = datetime.fromtimestamp(remote.expires_at, UTC)
        if remote.status in ENDED:
            values["finished_at"] = values.get("finished_at") or utcnow()
        self._update(batch_id, values)
        with self.engine.begin() as conn:  # the other batches this run will follow, too
            conn.execute(
                sa.update(ApiBatch)
                .where(ApiBatch.collector == self.collector, ApiBatch.collected_at.is_(None))
                .values(collector_expires_at=values["collector_expires_at"])
            )

    def _uncollected(self, batch_id: int) -> list[ApiBatchRequest]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(ApiBatchRequest).where(
                        ApiBatchRequest.batch_id == batch_id,
                        ApiBatchRequest.collected_at.is_(None),
                    )
                ).all()
            )

    def _mark_collected(self, ids: list[int | None]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(ApiBatchRequest)
                .where(ApiBatchRequest.id.in_(ids))
                .values(collected_at=utcnow())
            )

    def _release(self, article_id: int, owner: str) -> None:
        with self.engine.begin() as conn:
            lease.release(conn, article_id, owner)

    def _finish(self, batch_id: int, status: str, error: str | None) -> None:
        """The batch collected: its leases given back (what no answer reached stays
        pending), its status final."""
        with self.engine.begin() as conn:
            lease.release_all(conn, lease_name(batch_id))
            conn.execute(
                sa.update(ApiBatch)
                .where(ApiBatch.id == batch_id)
                .values(
                    status=status,
                    collected_at=utcnow(),
                    collector=None,
                    collector_expires_at=None,
                    error=self._scrub(error) if error else None,
                )
            )

    def _abandon(self, batch_id: int, reason: str) -> None:
        """A batch that never reached the server: its articles free and pending."""
        with self.engine.begin() as conn:
            lease.release_all(conn, lease_name(batch_id))
            conn.execute(
                sa.update(ApiBatch)
                .where(ApiBatch.id == batch_id)
                .values(
                    status="abandoned",
                    error=self._scrub(reason),
                    collector=None,
                    collector_expires_at=None,
                    finished_at=utcnow(),
                )
            )


def _answered(line: dict[str, Any] | None) -> bool:
    """An output line holding an answer (a 200 with a body), not an error."""
    response = (line or {}).get("response")
    return (
        isinstance(response, dict)
        and response.get("status_code") == 200
        and isinstance(response.get("body"), dict)
        and not (line or {}).get("error")
    )


def _status_code(line: dict[str, Any] | None) -> int | None:
    """The HTTP status an output line reports, if it is well-formed enough to say."""
    response = (line or {}).get("response")
    code = response.get("status_code") if isinstance(response, dict) else None
    return code if isinstance(code, int) else None


def _schema() -> dict[str, Any]:
    from tracker.schemas import response_schema

    return response_schema()


def _batch_errors(remote: Any) -> str | None:
    """Why the server refused a batch (its validation errors), in one line."""
    errors = getattr(getattr(remote, "errors", None), "data", None) or []
    messages = [f"line {e.line}: {e.message}" if e.line else str(e.message) for e in errors]
    if remote.status == "failed":
        return ("the server refused the batch: " + "; ".join(messages))[:1000]
    if remote.status in ("expired", "cancelled"):
        return f"the batch {remote.status}; its unanswered articles are pending again"
    return None


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:500]
    return (str(exc) or type(exc).__name__)[:500]
