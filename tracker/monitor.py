"""`tracker watch`: one pass over the followed feeds, and the loop that repeats it.

A pass: fetch every feed that is due (side by side, each host in its turn), record each
entry once (by GUID within its feed, and by its page's URL), fetch each new entry's page and
read it with the same HTML reader as `tracker import` (the same text from two outlets is one
article with two appearances), hand the new articles to `hand_off` for extraction, raise an
alert for every new claim that repeats a checked claim or a published fact-check, and send
the alerts waiting for the webhook.

A feed that fails (unreachable, 5xx, malformed, robots.txt) is recorded with the reason and
skipped until its back-off runs out (`TRACKER_FEED_BACKOFF`, doubling up to 6 hours, longer
if the server said Retry-After); the other feeds go on. A page that fails for a reason that
may pass (a timeout, a 5xx) is tried again in the next passes, up to `PAGE_ATTEMPTS` times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from tracker.alerts import Delivery, deliver, raise_alerts
from tracker.config import Settings
from tracker.db import session_scope
from tracker.feeds import Entry, FeedProblem, canonical_url, clean_text, key, parse_feed
from tracker.fetching import FEED_ACCEPT, PAGE_ACCEPT, Fetched, Fetcher, FetchError, host_of
from tracker.ingest import add_article
from tracker.models import Article, ArticleCreate, Feed, FeedEntry, utcnow
from tracker.readers import ReadError, parse

PAGE_ATTEMPTS = 3  # a page that keeps timing out or failing with a 5xx is given up after
MAX_BACKOFF = 6 * 3600.0
MAX_RETRY_AFTER = 24 * 3600.0
FEEDS_AT_ONCE = 8
SITES_AT_ONCE = 8  # sites whose pages are read side by side
HTML_TYPES = {"", "text/html", "application/xhtml+xml", "text/plain"}


@dataclass
class FeedReport:
    feed_id: int
    url: str
    state: str  # read, unchanged, failed, waiting (back-off not over)
    new_entries: int = 0
    error: str | None = None
    next_check_at: datetime | None = None


@dataclass
class PassReport:
    feeds: list[FeedReport] = field(default_factory=list)
    pages_read: int = 0
    same_text: int = 0  # pages whose text was stored already (another outlet's copy)
    pages_failed: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)
    pages_waiting: int = 0  # not asked: their site did not answer earlier in the pass
    extracted: int = 0
    extraction_failed: list[tuple[int, str]] = field(default_factory=list)
    queued: int = 0  # articles left for the workers (`tracker worker` is running)
    alerts: int = 0
    delivery: Delivery = field(default_factory=Delivery)
    requests: int = 0
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for feed in self.feeds if feed.state == state)


def shown_url(url: str) -> str:
    """A feed or page address as it may be printed: without a user name or password."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
    except ValueError:
        return "(an address that cannot be shown)"


def backoff(settings: Settings, failures: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the `failures`-th failure in a row: the first wait doubled
    each time, at most 6 hours; at least what the server asked for (at most a day)."""
    wait = min(settings.feed_backoff * 2 ** max(0, failures - 1), MAX_BACKOFF)
    if retry_after:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return wait


# --- One pass ---------------------------------------------------------------------------


def run_pass(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    hand: Callable[[Engine, list[int], Settings], HandOff] | None = None,
    robots: dict | None = None,
) -> PassReport:
    """Fetch, read, extract, alert, deliver: one pass (`tracker watch --once`). `robots`:
    the robots.txt files read by earlier passes of this process."""
    started = time.monotonic()
    now = now or utcnow()
    report = PassReport()
    article_ids = asyncio.run(_collect(engine, settings, now, report, robots))
    article_ids += [i for i in _unfinished(engine) if i not in article_ids]
    if article_ids:
        handed = (hand or hand_off)(engine, article_ids, settings)
        report.extracted = handed.extracted
        report.extraction_failed = handed.failed
        report.queued = handed.queued
    report.alerts = len(raise_alerts(engine, settings, now=now))
    report.delivery = deliver(engine, settings, now=now)
    report.seconds = time.monotonic() - started
    return report


async def _collect(
    engine: Engine, settings: Settings, now: datetime, report: PassReport, robots: dict | None
) -> list[int]:
    """Fetch the due feeds and the pages of their new entries; returns the ids of the
    articles to extract."""
    with Session(engine) as session:
        feeds = session.exec(select(Feed).order_by(Feed.id)).all()
    due = [f for f in feeds if f.next_check_at is None or _aware(f.next_check_at) <= now]
    for feed in feeds:
        if feed not in due:
            report.feeds.append(
                FeedReport(feed.id, feed.url, "waiting", error=feed.error,
                           next_check_at=feed.next_check_at)
            )  # fmt: skip
    async with Fetcher(settings, robots=robots) as fetcher:
        gate = asyncio.Semaphore(FEEDS_AT_ONCE)

        async def one_feed(feed: Feed) -> FeedReport:
            async with gate:
                return await check_feed(engine, fetcher, feed, settings, now)

        report.feeds += await asyncio.gather(*(one_feed(f) for f in due))
        article_ids = await read_pages(engine, fetcher, settings, report)
        report.requests = fetcher.requests
    return article_ids


def _aware(value: datetime) -> datetime:
    """SQLite gives times back without their zone; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def check_feed(
    engine: Engine, fetcher: Fetcher, feed: Feed, settings: Settings, now: datetime
) -> FeedReport:
    """Fetch one feed (a conditional GET) and record its new entries. Never raises: a
    failure is the feed's, recorded with its back-off."""
    try:
        fetched = await fetcher.get(
            feed.url,
            accept=FEED_ACCEPT,
            etag=feed.etag,
            last_modified=feed.last_modified,
            allow_private=True,  # an admin chose this address
        )
        if fetched.not_modified:
            _feed_ok(engine, feed.id, now, fetched, None)
            return FeedReport(feed.id, feed.url, "unchanged")
        parsed = await asyncio.to_thread(parse_feed, fetched.body, fetched.final_url)
        new = record_entries(engine, feed.id, parsed.entries, now)
        _feed_ok(engine, feed.id, now, fetched, parsed)
        return FeedReport(feed.id, feed.url, "read", new_entries=new)
    except FetchError as failure:
        if failure.skipped:  # another feed of its site timed out just now: next pass
            return FeedReport(feed.id, feed.url, "waiting", error=failure.reason)
        reason, retry_after = failure.reason, failure.retry_after
    except FeedProblem as problem:
        reason, retry_after = str(problem), None
    except Exception as exc:  # a bug or a parser's surprise: this feed's failure, not the pass's
        reason, retry_after = f"could not be read: {type(exc).__name__}", None
    until = _feed_failed(engine, feed.id, now, reason, settings, retry_after)
    return FeedReport(feed.id, feed.url, "failed", error=reason, next_check_at=until)


def _feed_ok(engine: Engine, feed_id: int, now: datetime, fetched: Fetched, parsed) -> None:
    values: dict = {"checked_at": now, "ok_at": now, "failures": 0, "error": None,
                    "next_check_at": None}  # fmt: skip
    if parsed is not None:
        values |= {
            "etag": clean_text(fetched.etag, 1000),
            "last_modified": clean_text(fetched.last_modified, 100),
            "kind": parsed.kind[:32],
            "title": parsed.title,
        }
    with session_scope(engine) as session:
        session.exec(sa.update(Feed).where(Feed.id == feed_id).values(**values))


def _feed_failed(
    engine: Engine,
    feed_id: int,
    now: datetime,
    reason: str,
    settings: Settings,
    retry_after: float | None,
) -> datetime:
    with session_scope(engine) as session:
        failures = (session.get(Feed, feed_id).failures or 0) + 1
        until = now + timedelta(seconds=backoff(settings, failures, retry_after))
        session.exec(
            sa.update(Feed)
            .where(Feed.id == feed_id)
            .values(checked_at=now, failures=failures, error=reason[:1000], next_check_at=until)
        )
    return until


def record_entries(engine: Engine, feed_id: int, entries: list[Entry], now: datetime) -> int:
    """Store the entries never seen before (by GUID in this feed, or by page URL in any
    feed), pending; returns how many. Two queries find the known ones, however many."""
    keyed = [
        (entry, key(canonical_url(entry.url)), key(entry.guid) if entry.guid else None)
        for entry in entries
    ]
    new = 0
    with session_scope(engine) as session:
        urls = set(
            session.exec(
                select(FeedEntry.url_key).where(FeedEntry.url_key.in_([u for _, u, _ in keyed]))
            ).all()
        )
        guids = set(
            session.exec(
                select(FeedEntry.guid_key).where(
                    FeedEntry.feed_id == feed_id,
                    FeedEntry.guid_key.in_([g for _, _, g in keyed if g]),
                )
            ).all()
        )
        for entry, url_key, guid_key in keyed:
            if url_key in urls or (guid_key and guid_key in guids):
                continue
            urls.add(url_key)
            if guid_key:
                guids.add(guid_key)
            try:
                with session.begin_nested():
                    session.add(
                        FeedEntry(
                            feed_id=feed_id, guid_key=guid_key, url=entry.url, url_key=url_key,
                            title=entry.title, published_at=entry.published_at, seen_at=now,
                        )
                    )  # fmt: skip
                    session.flush()
            except IntegrityError:  # another watch stored it a moment ago
                continue
            new += 1
    return new


# --- Pages ------------------------------------------------------------------------------


@dataclass
class _Page:
    entry_id: int
    url: str
    title: str | None
    published_at: datetime | None
    attempts: int
    outlet: str | None
    feed_url: str | None


async def read_pages(
    engine: Engine, fetcher: Fetcher, settings: Settings, report: PassReport
) -> list[int]:
    """Fetch and read every pending entry's page; returns the articles to extract."""
    with Session(engine) as session:
        rows = session.exec(
            select(FeedEntry, Feed.outlet, Feed.url)
            .outerjoin(Feed, Feed.id == FeedEntry.feed_id)
            .where(FeedEntry.state == "pending")
            .order_by(FeedEntry.id)
        ).all()
    pages = [
        _Page(e.id, e.url, e.title, e.published_at, e.attempts, outlet, feed_url)
        for e, outlet, feed_url in rows
    ]
    private_feeds = {
        url: await fetcher.is_private(url) for url in {p.feed_url for p in pages if p.feed_url}
    }
    # One worker per site (a site is asked one request at a time anyway), a few sites at
    # once: a slow site's pages never hold up another site's.
    sites: dict[str, list[_Page]] = {}
    for page in pages:
        sites.setdefault(host_of(page.url), []).append(page)
    gate = asyncio.Semaphore(SITES_AT_ONCE)
    to_extract: list[int] = []

    async def site(queue: list[_Page]) -> None:
        async with gate:  # its pages are fetched (one request at a time, by the fetcher)
            reads = [asyncio.create_task(read_page(fetcher, page, private_feeds)) for page in queue]
            for page, read in zip(queue, reads, strict=True):  # and parsed meanwhile, but
                data = await read  # stored in the feeds' order: the first seen stays first
                article_id = _store_page(engine, page, data, report) if data else None
                if article_id is not None and article_id not in to_extract:
                    to_extract.append(article_id)

    await asyncio.gather(*(site(queue) for queue in sites.values()))
    return to_extract


async def read_page(
    fetcher: Fetcher, page: _Page, private_feeds: dict[str | None, bool]
) -> tuple[Fetched, ArticleCreate] | FetchError:
    """One entry's page, fetched and read as HTML; or why it could not be."""
    allow_private = bool(page.feed_url and private_feeds.get(page.feed_url))
    try:
        fetched = await fetcher.get(page.url, accept=PAGE_ACCEPT, allow_private=allow_private)
        if fetched.content_type not in HTML_TYPES:
            raise FetchError(f"not a web page ({fetched.content_type[:80]})", permanent=True)
        return fetched, await asyncio.to_thread(_article, fetched, page)
    except FetchError as failure:
        return failure
    except Exception as exc:  # an odd page: this entry's failure, not the pass's
        return FetchError(f"could not be read: {type(exc).__name__}", permanent=True)


def _store_page(
    engine: Engine,
    page: _Page,
    read: tuple[Fetched, ArticleCreate] | FetchError,
    report: PassReport,
) -> int | None:
    """Store a page read as an article (or find it stored already) and mark its entry.
    Returns the article's id when it needs extracting."""
    if isinstance(read, FetchError):
        if read.skipped:  # its site is down: the next pass asks again, no attempt counted
            report.pages_waiting += 1
        else:
            _page_failed(engine, page, read.reason, read.permanent, report)
        return None
    fetched, data = read
    article, new = add_article(engine, data)
    with session_scope(engine) as session:
        session.exec(
            sa.update(FeedEntry)
            .where(FeedEntry.id == page.entry_id)
            .values(state="stored", article_id=article.id, fetched_url=fetched.final_url,
                    attempts=page.attempts + 1, error=None)
        )  # fmt: skip
    report.pages_read += 1
    if not new:
        report.same_text += 1
    return article.id if article.extraction_state == "pending" else None


def _article(fetched: Fetched, page: _Page) -> ArticleCreate:
    """The page read by the importer's HTML reader; the feed's outlet and the entry's
    title and date fill in what the page does not say. The URL is the one we read."""
    items = list(parse(fetched.final_url, fetched.body, "html", None))
    item = items[0] if items else ReadError(fetched.final_url, "no article text found")
    if isinstance(item, ReadError):
        raise FetchError(item.reason, permanent=True)
    return item.model_copy(
        update={
            "url": fetched.final_url,
            "outlet": page.outlet or item.outlet,
            "title": item.title or page.title,
            "published_at": item.published_at or page.published_at,
            "source_path": fetched.final_url,
        }
    )


def _page_failed(
    engine: Engine, page: _Page, reason: str, permanent: bool, report: PassReport
) -> None:
    attempts = page.attempts + 1
    given_up = permanent or attempts >= PAGE_ATTEMPTS
    with session_scope(engine) as session:
        session.exec(
            sa.update(FeedEntry)
            .where(FeedEntry.id == page.entry_id)
            .values(state="failed" if given_up else "pending", attempts=attempts,
                    error=reason[:1000])
        )  # fmt: skip
    report.pages_failed.append((page.url, reason + ("" if given_up else " (will try again)")))


def _unfinished(engine: Engine) -> list[int]:
    """Articles from the feeds still waiting for extraction (a pass interrupted)."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(Article.id)
                .where(
                    Article.extraction_state == "pending",
                    Article.id.in_(
                        select(FeedEntry.article_id).where(FeedEntry.article_id.is_not(None))
                    ),
                )
                .order_by(Article.id)
            ).all()
        )


# --- Extraction: the one step issue 13's work queue replaces --------------------------------


@dataclass
class HandOff:
    extracted: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (article id, reason)
    queued: int = 0  # left in the queue for the workers


def hand_off(engine: Engine, article_ids: list[int], settings: Settings) -> HandOff:
    """Extract these stored (pending) articles' claims. Everything `watch` finds goes
    through here. When a worker is alive (`tracker worker`, on any machine), they stay in
    the queue for the workers; else they are extracted in this process, through the same
    batch importer as `tracker import` (leases, one transaction per article, matching).
    Either way the alerts follow once the claims are stored and compared
    (`alerts.raise_alerts` looks for such articles, not for this function's result)."""
    from tracker.batch import run_batch
    from tracker.workqueue import worker_running

    if worker_running(engine, settings):
        return HandOff(queued=len(article_ids))

    report = asyncio.run(
        run_batch(engine, list(article_ids), settings, concurrency=settings.concurrency)
    )
    return HandOff(
        report.count("extracted"),
        [(item.article_id or 0, item.error or "failed") for item in report.failures],
    )


# --- The loop ----------------------------------------------------------------------------


def watch(
    engine: Engine,
    settings: Settings,
    *,
    once: bool = False,
    interval: float | None = None,
    on_pass: Callable[[PassReport], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PassReport | None:
    """Run passes until interrupted (or one, with `once`), `interval` seconds apart from
    the start of one to the start of the next. A pass that fails as a whole (the database
    is down) is reported and the loop goes on; with `once` it raises. Returns the last
    pass's report."""
    interval = interval or settings.watch_interval
    robots: dict = {}
    report = None
    while True:
        started = time.monotonic()
        try:
            report = run_pass(engine, settings, robots=robots)
        except Exception as exc:
            if once:
                raise
            if on_error:
                on_error(f"the pass failed: {type(exc).__name__}: {_first_line(exc)}")
        else:
            if on_pass:
                on_pass(report)
        if once:
            return report
        sleep(max(0.0, interval - (time.monotonic() - started)))


def _first_line(exc: BaseException) -> str:
    """An exception's first line, without the SQL and parameters SQLAlchemy adds."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [""])[0][:300]


# --- In words (the CLI prints these) ---------------------------------------------------------


def _when(value: datetime | None) -> str:
    return f"{_aware(value):%Y-%m-%d %H:%M} UTC" if value else "never"


def describe_pass(report: PassReport) -> list[str]:
    """What a pass did, for a terminal or a cron mail: failures named, then one summary."""
    lines = []
    for feed in report.feeds:
        if feed.state == "failed":
            lines.append(
                f"  ✗ feed {feed.feed_id} {shown_url(feed.url)}: {feed.error}; "
                f"next try after {_when(feed.next_check_at)}"
            )
    for url, reason in report.pages_failed:
        lines.append(f"  ✗ page {shown_url(url)}: {reason}")
    for article_id, reason in report.extraction_failed:
        lines.append(f"  ✗ article {article_id}: {reason}")
    for error in report.delivery.errors[:5]:
        lines.append(f"  ✗ alert webhook: {error} (tried again later)")
    if not report.feeds:
        lines.append("No feeds followed: tracker feeds add URL [--outlet NAME]")
    new = sum(feed.new_entries for feed in report.feeds)
    lines.append(
        f"{len(report.feeds)} feeds: {report.count('read')} read, "
        f"{report.count('unchanged')} unchanged, {report.count('failed')} failed, "
        f"{report.count('waiting')} waiting to retry; {new} new entries; "
        f"{report.pages_read} pages read ({report.same_text} the same text as a stored "
        f"article), {len(report.pages_failed)} failed"
        + (
            f", {report.pages_waiting} left for the next pass (site down)"
            if report.pages_waiting
            else ""
        )
        + f"; {report.extracted} articles extracted"
        + (f", {report.queued} queued for the workers" if report.queued else "")
        + "; "
        f"{report.alerts} alerts raised, {report.delivery.sent} sent; "
        f"{report.requests} requests, {report.seconds:.1f} s"
    )
    return lines


def feed_lines(engine: Engine, *, as_json: bool = False) -> list[str]:
    """`tracker feeds list`: each feed with its last fetch, error and back-off."""
    import json

    from tracker.feeds import feed_statuses

    lines = []
    for status in feed_statuses(engine):
        feed = status.feed
        if as_json:
            lines.append(
                json.dumps(
                    {
                        "id": feed.id, "url": shown_url(feed.url), "outlet": feed.outlet,
                        "title": feed.title, "kind": feed.kind,
                        "checked_at": feed.checked_at and _aware(feed.checked_at).isoformat(),
                        "ok_at": feed.ok_at and _aware(feed.ok_at).isoformat(),
                        "failures": feed.failures, "error": feed.error,
                        "next_check_at": feed.next_check_at
                        and _aware(feed.next_check_at).isoformat(),
                        "entries": status.entries, "articles": status.articles,
                        "unreadable_pages": status.failed_pages,
                    },
                    ensure_ascii=False,
                )
            )  # fmt: skip
            continue
        name = " ".join(filter(None, [feed.outlet, f"({feed.title})" if feed.title else None]))
        lines.append(f"{feed.id:>4}  {shown_url(feed.url)}  {name}".rstrip())
        state = (
            f"failing ({feed.failures} in a row): {feed.error}; next try after "
            f"{_when(feed.next_check_at)}"
            if feed.failures
            else f"ok, last read {_when(feed.ok_at)}"
            if feed.ok_at
            else "not read yet"
        )
        lines.append(
            f"      {state}; {status.entries} entries, {status.articles} read, "
            f"{status.failed_pages} unreadable"
        )
    return lines or ["No feeds followed: tracker feeds add URL [--outlet NAME]"]
