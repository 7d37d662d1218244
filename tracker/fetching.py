"""Fetching feeds and pages from other people's servers, politely and safely.

Polite: a clear User-Agent (`TRACKER_USER_AGENT`), robots.txt obeyed (RFC 9309 through
`urllib.robotparser`, its Crawl-delay included), one request at a time per host spaced by
`TRACKER_HOST_INTERVAL`, conditional GETs (ETag, Last-Modified) so an unchanged feed costs
a 304. Safe: a deadline on the whole response (`TRACKER_FETCH_TIMEOUT`: a server that drips
one byte a second cannot hold a pass), a size limit on the decoded body
(`TRACKER_FETCH_MAX_BYTES`: a gzip bomb is cut off too), redirects followed by hand up to
`TRACKER_FETCH_MAX_REDIRECTS`, each hop checked like the first (scheme, robots.txt, address).
A site that refuses connections, or leaves two requests in a row unanswered, is not asked
again in the pass (`down`): a dead site costs two timeouts, not one per page.

Addresses: feed entries are untrusted, so a link in a feed may not lead to a loopback,
private or link-local address (the cloud metadata service, the newsroom's intranet) unless
the feed itself is at one, i.e. an admin chose to follow a feed inside the network.

One HTTP client: httpx2, already the model client's transport (no second HTTP library), async
so feeds on different hosts are fetched side by side.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx2

from tracker.config import Settings

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
REDIRECTS = {301, 302, 303, 307, 308}
ROBOTS_MAX_BYTES = 500_000  # RFC 9309 asks crawlers to read at least 500 KiB
ROBOTS_KEEP = 3600.0  # seconds a robots.txt is trusted before it is fetched again
ROBOTS_RETRY = 300.0  # an unreachable robots.txt (5xx, network) is asked again after this
MAX_CRAWL_DELAY = 60.0  # a Crawl-delay beyond this is taken as this
DOWN_AFTER = 2  # requests in a row a host leaves unanswered before a pass stops asking it


class FetchError(Exception):
    """A fetch that gave nothing to read, with a reason fit to show (no URL: it may carry a
    key). `permanent`: asking again will not help (404, robots.txt, too large);
    `retry_after`: seconds the server asked us to wait."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        too_large: bool = False,
        unreachable: bool = False,
        skipped: bool = False,
        refused: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason, self.permanent, self.retry_after = reason, permanent, retry_after
        self.too_large = too_large
        self.unreachable = unreachable  # no answer at all: the site may be down
        self.skipped = skipped  # not asked: the site did not answer earlier in this pass
        self.refused = refused  # no connection at all (refused, no such host)


@dataclass
class Fetched:
    url: str  # as asked for
    final_url: str  # after redirects
    status: int  # 200, or 304 when a conditional GET found nothing new
    body: bytes
    content_type: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or ''}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _not_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class Fetcher:
    """One per pass: the HTTP client, each host's turn, and the robots.txt files read (the
    `robots` dict a `watch` process keeps from pass to pass). Use `async with`."""

    def __init__(
        self,
        settings: Settings,
        *,
        robots: dict[str, tuple[RobotFileParser, float]] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.agent = settings.user_agent
        self.client = httpx2.AsyncClient(
            follow_redirects=False,
            timeout=httpx2.Timeout(settings.fetch_timeout),
            headers={"User-Agent": self.agent},
            transport=transport,
        )
        self._turns: dict[str, asyncio.Lock] = {}
        self._next_at: dict[str, float] = {}
        self._delay: dict[str, float] = {}  # a host's Crawl-delay, when it asks for more
        # robots.txt files read, and until when they hold: `watch` keeps them across passes.
        self._robots = robots if robots is not None else {}
        self._robots_loading: dict[str, asyncio.Lock] = {}
        self.requests = 0
        self.down: set[str] = set()  # hosts that did not answer in this pass
        self._strikes: dict[str, int] = {}  # requests in a row a host left unanswered

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    # --- Addresses ------------------------------------------------------------------

    async def is_private(self, url: str) -> bool:
        """Whether `url`'s host is (or resolves to) a loopback, private or link-local
        address. A name that does not resolve is not private (its fetch will fail)."""
        host = urlsplit(url).hostname or ""
        try:
            return _not_public(host)
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except (OSError, UnicodeError):
            return False
        return any(_not_public(info[4][0]) for info in infos)

    async def _check_address(self, url: str, allow_private: bool) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("not an http(s) address", permanent=True)
        if not allow_private and await self.is_private(url):
            raise FetchError(
                "leads to a local or private network address (only a feed inside the "
                "network may link there)",
                permanent=True,
            )

    # --- Politeness -----------------------------------------------------------------

    def _turn(self, host: str) -> asyncio.Lock:
        return self._turns.setdefault(host, asyncio.Lock())

    async def _wait_turn(self, host: str) -> None:
        wait = self._next_at.get(host, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _done_turn(self, host: str) -> None:
        interval = max(self.settings.host_interval, self._delay.get(host, 0.0))
        self._next_at[host] = time.monotonic() + interval

    async def robots(self, url: str) -> RobotFileParser:
        """The robots.txt rules of `url`'s site, read at most once an hour."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        async with self._robots_loading.setdefault(origin, asyncio.Lock()):
            cached = self._robots.get(origin)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            rules, keep = await self._load_robots(origin)
            self._robots[origin] = (rules, time.monotonic() + keep)
            delay = rules.crawl_delay(self.agent)
            if delay:
                self._delay[host_of(url)] = min(float(delay), MAX_CRAWL_DELAY)
            return rules

    async def _load_robots(self, origin: str) -> tuple[RobotFileParser, float]:
        """RFC 9309: a 4xx means no rules (allow all); a 5xx or no answer means "assume
        nothing is allowed" until it can be read."""
        rules = RobotFileParser(origin + "/robots.txt")
        url = origin + "/robots.txt"
        try:
            for _ in range(self.settings.fetch_max_redirects + 1):
                response, body = await self._one(url, {"Accept": "text/plain"}, ROBOTS_MAX_BYTES)
                if response.status_code in REDIRECTS and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    if urlsplit(url).scheme not in ("http", "https"):
                        break
                    continue
                break
            else:
                rules.allow_all = True  # a redirect loop: as unavailable (4xx)
                return rules, ROBOTS_KEEP
        except FetchError as failed:
            if failed.skipped:
                raise
            return _unreadable(rules, failed.reason), ROBOTS_RETRY
        status = response.status_code
        if status >= 500:
            return _unreadable(rules, f"HTTP {status}"), ROBOTS_RETRY
        if status >= 400 or status in REDIRECTS:
            rules.allow_all = True
            return rules, ROBOTS_KEEP
        rules.parse(body.decode("utf-8", "replace").splitlines())
        return rules, ROBOTS_KEEP

    # --- Requests -------------------------------------------------------------------

    async def _one(
        self, url: str, headers: dict[str, str], max_bytes: int
    ) -> tuple[httpx2.Response, bytes]:
        """One request, in the host's turn, within the deadline and the size limit."""
        host = host_of(url)
        async with self._turn(host):
            if host in self.down:  # one timeout per site and pass, not one per page
                raise FetchError(
                    "not asked: the site did not answer earlier in this pass", skipped=True
                )
            await self._wait_turn(host)
            try:
                answer = await self._read(url, headers, max_bytes)
            except FetchError as failed:
                if failed.unreachable:  # refused at once; no answer, twice in a row
                    self._strikes[host] = self._strikes.get(host, 0) + 1
                    if failed.refused or self._strikes[host] >= DOWN_AFTER:
                        self.down.add(host)
                raise
            else:
                self._strikes.pop(host, None)
                return answer
            finally:
                self.requests += 1
                self._done_turn(host)

    async def _read(
        self, url: str, headers: dict[str, str], max_bytes: int
    ) -> tuple[httpx2.Response, bytes]:
        too_large = FetchError(
            f"larger than the {max_bytes / 1_000_000:g} MB limit", permanent=True, too_large=True
        )
        timeout = self.settings.fetch_timeout
        try:
            async with asyncio.timeout(timeout):
                async with self.client.stream("GET", url, headers=headers) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise too_large
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise too_large
                        chunks.append(chunk)
                    return response, b"".join(chunks)
        except TimeoutError:
            raise FetchError(f"no complete answer within {timeout:g} s", unreachable=True) from None
        except httpx2.TimeoutException:
            raise FetchError(f"no complete answer within {timeout:g} s", unreachable=True) from None
        except httpx2.ConnectError as exc:
            reason = f"could not connect ({_first_line(exc)})"
            raise FetchError(reason, unreachable=True, refused=True) from None
        except httpx2.TransportError as exc:
            reason = f"the connection failed ({type(exc).__name__})"
            raise FetchError(reason, unreachable=True) from None
        except httpx2.InvalidURL:
            raise FetchError("not a valid address", permanent=True) from None

    async def get(
        self,
        url: str,
        *,
        accept: str = PAGE_ACCEPT,
        etag: str | None = None,
        last_modified: str | None = None,
        allow_private: bool = False,
    ) -> Fetched:
        """GET `url`, following redirects, or raise FetchError. With `etag` or
        `last_modified`, an unchanged resource comes back as a 304 with no body."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _ in range(self.settings.fetch_max_redirects + 1):
            await self._check_address(current, allow_private)
            rules = await self.robots(current)
            if not rules.can_fetch(self.agent, current):
                if problem := getattr(rules, "problem", None):
                    raise FetchError(f"robots.txt could not be read ({problem}): nothing is "
                                     "fetched from this site until it can")  # fmt: skip
                raise FetchError("robots.txt does not allow us to fetch this", permanent=True)
            response, body = await self._one(current, headers, self.settings.fetch_max_bytes)
            status = response.status_code
            if status in REDIRECTS and response.headers.get("location"):
                current = urljoin(current, response.headers["location"].strip())
                continue
            if status == 304:
                return Fetched(url, current, 304, b"", "", etag, last_modified)
            if status >= 400 or status < 200 or status in REDIRECTS:
                raise _status_error(status, response.headers)
            return Fetched(
                url,
                current,
                status,
                body,
                response.headers.get("content-type", "").split(";")[0].strip().lower(),
                response.headers.get("etag"),
                response.headers.get("last-modified"),
            )
        raise FetchError(f"more than {self.settings.fetch_max_redirects} redirects (a loop?)")


def _unreadable(rules: RobotFileParser, problem: str) -> RobotFileParser:
    """RFC 9309: robots.txt unreachable (a 5xx, no answer) means "nothing allowed" until it
    can be read; the reason goes with the rules, for the message."""
    rules.disallow_all = True
    rules.problem = problem  # type: ignore[attr-defined]
    return rules


def _status_error(status: int, headers: httpx2.Headers) -> FetchError:
    words = {
        401: "needs a login",
        403: "forbidden",
        404: "not found",
        410: "gone",
        429: "too many requests",
        500: "server error",
        502: "bad gateway",
        503: "unavailable",
        504: "gateway timeout",
    }
    reason = f"HTTP {status}" + (f" ({words[status]})" if status in words else "")
    transient = status >= 500 or status in (408, 425, 429)
    return FetchError(
        reason, permanent=not transient, retry_after=_retry_after(headers.get("retry-after"))
    )


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text[:200] or type(exc).__name__
