"""The feeds the desk follows, and what a feed lists.

Managing: `add_feed`, `remove_feed`, `feed_statuses` (CLI and dashboard; with an `actor`,
the library checks that they are an admin). Reading: `parse_feed` turns a fetched document
into entries: RSS 0.9x/1.0/2.0 and Atom through feedparser, a news sitemap
(`<urlset>` with `news:` tags) through lxml with entities and network off.

A feed is untrusted: its titles, links and dates are bounded and cleaned here, a link that
is not an http(s) address is dropped, and only the first `MAX_ENTRIES` entries are read.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from tracker.claimreview import web_url
from tracker.db import session_scope
from tracker.models import Feed, FeedEntry

MAX_ENTRIES = 200  # per fetch of a feed: the newest, in the order the feed lists them
MAX_TEXT = 500  # a title or an outlet name
MAX_URL = 2_000
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ocid|cmpid)$", re.I)
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


class FeedProblem(ValueError):
    """The document is not a feed we can read; the message says why."""


@dataclass
class Entry:
    """One item of a feed: its page, and what the feed says about it."""

    url: str
    guid: str | None = None
    title: str | None = None
    published_at: datetime | None = None


@dataclass
class Parsed:
    kind: str  # feedparser's version (rss20, atom10, ...) or "sitemap"
    title: str | None
    entries: list[Entry]
    dropped: int = 0  # entries without a usable link


def clean_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A short text from a feed, fit to store and show: one line, no control or
    direction-changing characters, at most `limit` characters."""
    if not isinstance(value, str):
        return None
    value = " ".join(_INVISIBLE.sub(" ", value).split())
    return value[:limit] or None


def canonical_url(url: str) -> str:
    """The form of a link that identifies a page: no fragment, no tracking parameters
    (utm_*, fbclid, ...), lower-case scheme and host."""
    parts = urlsplit(url.strip())
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, True) if not _TRACKING.match(k)])
    netloc = parts.netloc.lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _link(base: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_URL:
        return None
    return web_url(urljoin(base, value.strip()))


# --- Reading a feed -----------------------------------------------------------------------


def parse_feed(body: bytes, url: str) -> Parsed:
    """The entries of a fetched feed or news sitemap, or FeedProblem."""
    head = body[:4096]
    if b"<urlset" in head or b"<sitemapindex" in head:
        return _sitemap(body, url)
    return _feed(body, url)


def _feed(body: bytes, url: str) -> Parsed:
    import feedparser

    # Bytes in a BytesIO: given a plain string or bytes, feedparser may take it for a file
    # name or a URL and open it.
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-location": url},
        sanitize_html=True,
        resolve_relative_uris=True,
    )
    if not result.get("version") and not result.entries:
        if found := _advertised_feeds(body, url):  # the site's home page, say
            raise FeedProblem("a web page, not a feed; it names its feed: " + ", ".join(found[:3]))
        problem = result.get("bozo_exception")
        detail = f": {_first_line(problem)}" if problem else ""
        raise FeedProblem(f"not an RSS or Atom feed, nor a news sitemap{detail}")
    entries, dropped = [], 0
    for item in result.entries[:MAX_ENTRIES]:
        guid = clean_text(item.get("id"), MAX_URL)
        link = _link(url, item.get("link"))  # (a permalink GUID is the link already)
        if not link:
            dropped += 1
            continue
        entries.append(Entry(link, guid, clean_text(item.get("title")), _struct_time(item)))
    return Parsed(result.version or "feed", clean_text(result.feed.get("title")), entries, dropped)


def _advertised_feeds(body: bytes, url: str) -> list[str]:
    """The feeds a web page names (`<link rel="alternate" type="application/rss+xml">`)."""
    if b"<html" not in body[:4096].lower():
        return []
    from lxml import html

    try:
        links = html.fromstring(body).xpath(
            "//link[contains(@rel, 'alternate')][contains(@type, 'rss') or "
            "contains(@type, 'atom')]/@href"
        )
    except Exception:  # not parseable as HTML either
        return []
    return [found for link in links if (found := _link(url, str(link)))]


def _struct_time(item: Any) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = item.get(name)
        if value:
            try:
                return datetime(*value[:6], tzinfo=UTC)
            except (TypeError, ValueError):
                continue
    return None


def _sitemap(body: bytes, url: str) -> Parsed:
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise FeedProblem(f"not a readable sitemap: {_first_line(exc)}") from None
    if root.tag == f"{SITEMAP}sitemapindex":
        first = root.findtext(f"{SITEMAP}sitemap/{SITEMAP}loc") or ""
        raise FeedProblem(
            "a sitemap index, not a news sitemap: add the news sitemap it lists"
            + (f" (e.g. {clean_text(first, MAX_URL)})" if first.strip() else "")
        )
    if root.tag != f"{SITEMAP}urlset":
        raise FeedProblem("not a sitemap (<urlset> in the sitemaps.org namespace)")
    entries, dropped = [], 0
    for node in root.iterfind(f"{SITEMAP}url"):
        if len(entries) >= MAX_ENTRIES:
            break
        link = _link(url, node.findtext(f"{SITEMAP}loc"))
        if not link:
            dropped += 1
            continue
        news = node.find(f"{NEWS}news")
        title = news.findtext(f"{NEWS}title") if news is not None else None
        when = news.findtext(f"{NEWS}publication_date") if news is not None else None
        entries.append(
            Entry(link, None, clean_text(title), _iso(when or node.findtext(f"{SITEMAP}lastmod")))
        )
    return Parsed("sitemap", None, entries, dropped)


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _first_line(exc: Any) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# --- Managing the feeds -------------------------------------------------------------------


def _authorize(session: Session, actor: str | None) -> str | None:
    """Who acts: from the dashboard, an admin (checked); from the command line, whoever
    may use the database (None)."""
    if actor is None:
        return None
    from tracker.people import authorize

    return authorize(session, actor, needs="admin")


def add_feed(
    engine: Engine, url: str, outlet: str | None = None, *, actor: str | None = None
) -> Feed:
    """Follow a feed. Raises ValueError for an address that is not http(s) or a feed
    followed already."""
    url = (url or "").strip()
    if len(url) > MAX_URL or not web_url(url):
        raise ValueError("not a web address: give the feed's http:// or https:// URL")
    with session_scope(engine) as session:
        who = _authorize(session, actor)
        if session.exec(select(Feed).where(Feed.url == url)).first():
            raise ValueError("this feed is followed already")
        feed = Feed(url=url, outlet=clean_text(outlet), added_by=who)
        try:
            with session.begin_nested():
                session.add(feed)
                session.flush()
        except IntegrityError:
            raise ValueError("this feed is followed already") from None
        return feed


def remove_feed(engine: Engine, url_or_id: str | int, *, actor: str | None = None) -> Feed:
    """Stop following a feed. What it listed stays: its entries are the appearances of
    the articles they became."""
    with session_scope(engine) as session:
        _authorize(session, actor)
        query = select(Feed)
        if isinstance(url_or_id, int) or str(url_or_id).isdigit():
            query = query.where(sa.or_(Feed.id == int(url_or_id), Feed.url == str(url_or_id)))
        else:
            query = query.where(Feed.url == str(url_or_id).strip())
        feed = session.exec(query).first()
        if feed is None:
            raise LookupError("no such feed: `tracker feeds list` shows them")
        session.delete(feed)
        return feed


@dataclass
class FeedStatus:
    feed: Feed
    entries: int
    articles: int
    failed_pages: int


def feed_statuses(engine: Engine) -> list[FeedStatus]:
    """Every feed with how many entries it listed, how many became articles, and how many
    pages could not be read."""
    with Session(engine) as session:
        counts = {
            feed_id: (total, stored or 0, failed or 0)
            for feed_id, total, stored, failed in session.exec(
                select(
                    FeedEntry.feed_id,
                    func.count(),
                    func.sum(sa.case((FeedEntry.state == "stored", 1), else_=0)),
                    func.sum(sa.case((FeedEntry.state == "failed", 1), else_=0)),
                ).group_by(FeedEntry.feed_id)
            )
        }
        feeds = session.exec(select(Feed).order_by(Feed.id)).all()
    return [FeedStatus(f, *counts.get(f.id, (0, 0, 0))) for f in feeds]


@dataclass
class Appearance:
    outlet: str | None
    title: str | None
    url: str
    seen_at: datetime


def appearances(engine: Engine, article_id: int) -> list[Appearance]:
    """Where an article's text was seen by the feeds: one per entry (the same wire story
    from two outlets is one article with two appearances), first seen first."""
    with Session(engine) as session:
        rows = session.exec(
            select(FeedEntry, Feed.outlet, Feed.title)
            .outerjoin(Feed, Feed.id == FeedEntry.feed_id)
            .where(FeedEntry.article_id == article_id)
            .order_by(FeedEntry.seen_at, FeedEntry.id)
        ).all()
    found = []
    for entry, feed_outlet, feed_title in rows:
        url = entry.fetched_url or entry.url
        outlet = feed_outlet or feed_title or urlsplit(url).hostname
        found.append(Appearance(outlet, entry.title, url, entry.seen_at))
    return found
