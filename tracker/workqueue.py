"""Extraction as a service: pending articles are a queue in the database, and workers
(`tracker worker`, on any number of machines sharing one PostgreSQL) take them.

    enqueue  store articles as pending, no model call (`tracker import --enqueue`,
             the dashboard's Import)
    take     lease the oldest free pending articles: one UPDATE ... RETURNING over
             SELECT ... FOR UPDATE SKIP LOCKED, so two workers never take the same one
    work     a worker: take, extract and store through the same pipeline as
             `tracker import` (tracker/batch.py), with a heartbeat on its leases

A worker that dies leaves leases that run out after TRACKER_WORKER_LEASE seconds (at once
when it ran on this machine and its process is gone): another worker takes the articles
again. SQLite allows one writer at a time, so one worker at a time (a file lock beside the
database says whether one is running).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, func, select

from tracker import lease
from tracker.config import Settings
from tracker.models import Article, ArticleCreate, Worker, content_hash, utcnow

if TYPE_CHECKING:  # `tracker stats` reads the queue without the import pipeline's imports
    from tracker.readers import Item, ReadError


class WorkerBusy(RuntimeError):
    """Another worker already runs on this SQLite database."""


# --- Putting work in -----------------------------------------------------------------------


@dataclass
class EnqueueReport:
    queued: list[tuple[int, str]] = field(default_factory=list)  # (article id, source)
    already: list[tuple[int, str, str]] = field(default_factory=list)  # (id, source, state)
    invalid: list[ReadError] = field(default_factory=list)
    duplicates: int = 0


def enqueue(
    engine: Engine,
    items: Iterable[Item],
    *,
    force: bool = False,
    retry_failed: bool = False,
    on_item: Callable[[str, str], None] | None = None,
) -> EnqueueReport:
    """Store each article as pending (no model call). An article extracted before is
    queued again only with `force`, one that failed only with `retry_failed` (or force):
    the same rule as `tracker import`."""
    from tracker.ingest import add_article
    from tracker.readers import ReadError

    report = EnqueueReport()
    seen: set[str] = set()
    for item in items:
        if isinstance(item, ReadError):
            report.invalid.append(item)
            if on_item:
                on_item(item.source, f"unreadable: {item.reason}")
            continue
        source = item.source_path or "<input>"
        digest = content_hash(item.text)
        if digest in seen:
            report.duplicates += 1
            continue
        seen.add(digest)
        article, new = add_article(engine, item)
        state = article.extraction_state
        again = (state == "extracted" and force) or (state == "failed" and (retry_failed or force))
        if again:
            _requeue(engine, article.id)
        if new or again or state == "pending":
            report.queued.append((article.id, source))
            if on_item:
                on_item(source, f"queued as article {article.id}")
        else:
            report.already.append((article.id, source, state))
            if on_item:
                on_item(source, f"{state} before (article {article.id})")
    return report


def enqueue_one(engine: Engine, data: ArticleCreate, *, force: bool = False) -> int:
    """The dashboard's Import: store one article for the workers; its id."""
    report = enqueue(engine, [data], force=force, retry_failed=True)
    return (report.queued or [(a, s) for a, s, _ in report.already])[0][0]


def _requeue(engine: Engine, article_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(Article)
            .where(Article.id == article_id)
            .values(extraction_state="pending", extraction_error=None)
        )


# --- Taking work out ------------------------------------------------------------------------


def take(engine: Engine, owner: str, limit: int, seconds: float) -> list[int]:
    """Lease up to `limit` of the oldest pending articles no live run holds. On
    PostgreSQL, rows another worker is taking right now are skipped, not waited for."""
    now = utcnow()
    free = sa.or_(Article.lease_owner.is_(None), Article.lease_expires_at < now)
    candidates = (
        select(Article.id)
        .where(Article.extraction_state == "pending", free)
        .order_by(Article.id)
        .limit(limit)
    )
    if engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        sa.update(Article)
        .where(Article.id.in_(candidates.scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds), leased_at=now)
        .returning(Article.id)
    )
    with engine.begin() as conn:
        taken = sorted(
            conn.execute(statement, execution_options={"synchronize_session": False}).scalars()
        )
        if not taken:
            _free_the_dead(conn)
    return taken


def _free_the_dead(conn: sa.Connection) -> None:
    """Release the leases of runs of this machine whose process has ended (killed): their
    articles need not wait for the leases to run out."""
    owners = conn.execute(
        select(Article.lease_owner).where(Article.lease_expires_at.is_not(None)).distinct()
    ).scalars()
    for holder in [o for o in owners if o and lease._dead(o)]:
        conn.execute(
            sa.update(Article)
            .where(Article.lease_owner == holder)
            .values(lease_owner=None, lease_expires_at=None, leased_at=None)
        )


def pending(engine: Engine, *, workable: bool = False) -> int:
    """Articles waiting for extraction (taken or not). `workable`: only those a worker may
    yet extract, not those a Batch API batch holds for its 24-hour window (while it holds
    them, `tracker worker --until-empty` has nothing to wait for)."""
    query = select(func.count()).select_from(Article).where(Article.extraction_state == "pending")
    if workable:
        held = sa.and_(  # (FALSE, never NULL, for a free article: NOT keeps it)
            Article.lease_owner.is_not(None),
            Article.lease_expires_at.is_not(None),
            Article.lease_owner.startswith(lease.BATCH_PREFIX, autoescape=True),
            Article.lease_expires_at >= utcnow(),
        )
        query = query.where(sa.not_(held))
    with Session(engine) as session:
        return session.exec(query).one()


# --- Who works ------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_worker_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, hold the lock that makes this the only worker (a file beside the
    database; the system frees it when the process ends, however it ends). No-op on
    PostgreSQL, where any number of workers share the queue."""
    if engine.dialect.name != "sqlite":
        yield
        return
    database = make_url(str(engine.url)).database or ""
    if database in ("", ":memory:"):
        yield
        return
    path = Path(database).expanduser().resolve()  # one lock per file, through any symlink
    handle: IO[str] = open(f"{path}.worker-lock", "a+")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerBusy(
                f"another worker is already running on {path}; SQLite takes one writer at a "
                "time, so one worker at a time (several workers need PostgreSQL)"
            ) from None
        yield
    finally:
        handle.close()


def worker_running(engine: Engine, settings: Settings) -> bool:
    """Whether a worker (of any machine) has shown a sign of life within a lease."""
    since = utcnow() - timedelta(seconds=settings.worker_lease)
    with Session(engine) as session:
        seen = session.exec(select(Worker.owner).where(Worker.seen_at >= since)).all()
    return any(not lease._dead(owner) for owner in seen)


def register(engine: Engine, owner: str, concurrency: int) -> None:
    with Session(engine) as session:
        session.merge(
            Worker(owner=owner, host=socket.gethostname(), pid=os.getpid(), concurrency=concurrency)
        )
        session.commit()


def heartbeat(engine: Engine, owner: str, seconds: float) -> None:
    """The worker is alive: its row is seen now and its leases last another `seconds`."""
    with engine.begin() as conn:
        conn.execute(sa.update(Worker).where(Worker.owner == owner).values(seen_at=utcnow()))
    lease.renew_all(engine, owner, seconds)


def unregister(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(Worker).where(Worker.owner == owner))


def feed(
    engine: Engine,
    owner: str,
    settings: Settings,
    *,
    stop: threading.Event,
    until_empty: bool,
    poll: float = 2.0,
) -> Iterator[int]:
    """Article ids for a batch run, leased one at a time as the run has room for them,
    until `stop` is set (or, with `until_empty`, until nothing is pending). A lost database
    connection (PostgreSQL restarting) is waited out: the worker looks again later (with
    `until_empty`, a script's run, for a lease's length at most: StorageError then)."""
    import time

    from tracker.db import StorageError, disconnected, storage_problem

    pause, lost = poll, None
    while not stop.is_set():
        try:
            taken = take(engine, owner, 1, settings.worker_lease)
            empty = not taken and until_empty and pending(engine, workable=True) == 0
        except sa.exc.DBAPIError as exc:
            if not disconnected(exc):
                raise
            lost = lost or time.monotonic()
            if until_empty and time.monotonic() - lost > settings.worker_lease:
                raise StorageError(storage_problem(exc)[0]) from None
            pause = min(max(pause, poll) * 2, 30.0)
            stop.wait(pause)
            continue
        pause, lost = poll, None
        if taken:
            yield from taken
            continue
        if empty:
            return
        stop.wait(poll)


# --- What the queue holds (tracker stats) ---------------------------------------------------


@dataclass
class Leased:
    article_id: int
    owner: str
    since: datetime | None
    until: datetime | None


@dataclass
class QueueState:
    pending: int
    failed: int
    leased: list[Leased]  # the first `top` of them
    workers: list[Worker]
    extracting: int = 0  # pending articles under a lease that has not run out


def state(engine: Engine, settings: Settings, *, top: int = 20) -> QueueState:
    now = utcnow()
    since = now - timedelta(seconds=settings.worker_lease)
    held = sa.and_(
        Article.extraction_state == "pending",
        Article.lease_owner.is_not(None),
        Article.lease_expires_at >= now,
    )
    with Session(engine) as session:
        extracting = session.exec(select(func.count()).select_from(Article).where(held)).one()
        counts = dict(
            session.exec(
                select(Article.extraction_state, func.count())
                .where(Article.extraction_state.in_(("pending", "failed")))
                .group_by(Article.extraction_state)
            ).all()
        )
        leased = session.exec(
            select(Article.id, Article.lease_owner, Article.leased_at, Article.lease_expires_at)
            .where(held)
            .order_by(Article.leased_at)
            .limit(top)
        ).all()
        workers = session.exec(
            select(Worker).where(Worker.seen_at >= since).order_by(Worker.started_at)
        ).all()
    return QueueState(
        counts.get("pending", 0),
        counts.get("failed", 0),
        [Leased(*row) for row in leased],
        [w for w in workers if not lease._dead(w.owner)],  # killed here: gone at once
        extracting,
    )


# --- A worker -------------------------------------------------------------------------------


async def work(
    engine: Engine,
    settings: Settings,
    *,
    concurrency: int,
    until_empty: bool = False,
    stop: threading.Event | None = None,
    on_item: Callable | None = None,
    poll: float = 2.0,
    owner: str | None = None,
):
    """Take pending articles and extract them until `stop` is set (a signal) or, with
    `until_empty`, until nothing is pending. Raises WorkerBusy on SQLite when another
    worker runs. Returns the batch report of what this worker did."""
    import asyncio

    from tracker.batch import run_batch

    stop = stop or threading.Event()
    owner = owner or lease.new_owner()
    with sqlite_worker_lock(engine):
        from tracker.db import StorageError, storage_problem
        from tracker.ingest import retrying

        try:  # the first write: a full disk or a read-only database is said, not a traceback
            retrying(lambda: register(engine, owner, concurrency))  # (a dropped connection)
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(storage_problem(exc)[0]) from None
        beating = threading.Event()

        def beat() -> None:
            while not beating.wait(settings.worker_lease / 3):
                with contextlib.suppress(Exception):  # the store reports lasting faults
                    heartbeat(engine, owner, settings.worker_lease)

        pulse = threading.Thread(target=beat, name="tracker-heartbeat", daemon=True)
        pulse.start()
        try:
            ids = feed(engine, owner, settings, stop=stop, until_empty=until_empty, poll=poll)
            return await run_batch(
                engine,
                ids,
                settings,
                concurrency=concurrency,
                retry_failed=True,
                on_item=on_item,
                owner=owner,
                read_ahead=concurrency,
                stop=stop,
                match_at_once=not until_empty,  # a service: compare as it goes
            )
        finally:
            beating.set()
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(unregister, engine, owner)


# --- The dashboard's own worker -------------------------------------------------------------

_background_lock = threading.Lock()
_background: dict[str, threading.Thread] = {}


def start_background_worker(engine: Engine, settings: Settings) -> bool:
    """Extract what is queued in a thread of this process, unless a worker already runs
    (here, or anywhere with a heartbeat): the dashboard's Import works with no
    `tracker worker` started, and never blocks the page. Returns whether one started."""
    import asyncio

    key = str(engine.url)
    with _background_lock:
        running = _background.get(key)
        if running is not None and running.is_alive():
            return False
        if worker_running(engine, settings):
            return False

        def run() -> None:
            with contextlib.suppress(WorkerBusy):  # a `tracker worker` got there first
                asyncio.run(
                    work(
                        engine,
                        settings,
                        concurrency=settings.concurrency,
                        until_empty=True,
                        poll=0.5,
                    )
                )

        thread = threading.Thread(target=run, name="tracker-dashboard-worker", daemon=True)
        _background[key] = thread
        thread.start()
        return True


@dataclass
class Progress:
    article_id: int
    title: str | None
    state: str  # pending, extracting, extracted, failed
    claims: int
    error: str | None


def progress(engine: Engine, article_ids: list[int]) -> list[Progress]:
    """Where these articles stand in the queue, in the order given."""
    if not article_ids:
        return []
    from tracker.models import Claim

    with Session(engine) as session:
        articles = {
            a.id: a for a in session.exec(select(Article).where(Article.id.in_(article_ids)))
        }
        counts = dict(
            session.exec(
                select(Claim.article_id, func.count())
                .where(Claim.article_id.in_(article_ids))
                .group_by(Claim.article_id)
            ).all()
        )
    found = []
    for article_id in article_ids:
        article = articles.get(article_id)
        if article is None:
            continue
        state = article.extraction_state
        if state == "pending" and article.lease_owner:
            state = "extracting"
        found.append(
            Progress(
                article_id,
                article.title,
                state,
                counts.get(article_id, 0),
                article.extraction_error,
            )
        )
    return found
