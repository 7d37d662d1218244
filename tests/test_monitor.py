"""Monitoring (issue 14): `tracker watch` over feeds and pages served from a loopback web
server — RSS, Atom, a news sitemap, a malformed feed, a 404, a redirect loop, a slow server,
an oversized page, an entry repeated across feeds — and repeat-claim alerts received by a
loopback webhook. Claims come from the offline extractor: the model is not the point here.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.webserver import Route, WebServer, article_page, atom, news_sitemap, rss
from tracker.alerts import acknowledge, recent
from tracker.claimreview import FactCheckCreate, import_factchecks
from tracker.cli import app
from tracker.feeds import add_feed, appearances, feed_statuses, remove_feed
from tracker.fetching import Fetcher, FetchError
from tracker.models import Alert, Article, Claim, Feed, FeedEntry, utcnow
from tracker.monitor import describe_pass, run_pass
from tracker.people import NotAllowed
from tracker.review import set_status
from tracker.stats import collect, monitoring_lines

RSS_TYPE = "application/rss+xml"
BUDGET = [
    "The city council met on Tuesday to discuss the budget for next year.",
    "Mayor Jane Smith said unemployment in the city fell to 3.1 percent in May, the lowest "
    "rate in twenty years.",
    "The council will vote on the budget next month.",
]
REPEAT = [
    "Campaigning in the northern district on Saturday, the mayor repeated her record.",
    "Unemployment in the city fell to 3.1 percent in May, the lowest rate in twenty years, "
    "Mayor Jane Smith told supporters.",
    "Her opponent said the figure left out people who had stopped looking for work.",
]
HARBOUR = [
    "The harbour authority said cargo volumes rose by 12 percent last year.",
    "The new container terminal cost 240 million euros, according to the port's report.",
]
RAIL = [
    "The rail operator said 91 percent of trains ran on time in October.",
    "Ticket prices will rise by 4 percent in January, the operator announced.",
]
FACT_CHECK = FactCheckCreate(
    claim_reviewed="Unemployment in the city fell to 3.1 percent in May",
    rating="Misleading",
    organisation="Fact Org",
    url="https://factcheck.example/unemployment",
)


def settings_for(engine, **overrides):
    values = {
        "openai_api_key": None,
        "openai_base_url": None,
        "extractor": "offline",
        "host_interval": 0.0,
        "fetch_timeout": 10.0,  # a loaded machine answers late; the slow tests set 1.5
        "feed_backoff": 60.0,
        **overrides,
    }
    return make_settings(engine.url.render_as_string(hide_password=False), **values)


@pytest.fixture
def web():
    with WebServer() as server:
        yield server


@pytest.fixture
def other():
    """Another site."""
    with WebServer() as server:
        yield server


def page(web: WebServer, path: str, title: str, paragraphs: list[str], **kw) -> str:
    return web.route(path, Route(article_page(title, paragraphs), **kw))


def feed(web: WebServer, path: str, document: str, **kw) -> str:
    return web.route(path, Route(document, content_type=RSS_TYPE, **kw))


def entries(engine) -> list[FeedEntry]:
    with Session(engine) as session:
        return list(session.exec(select(FeedEntry).order_by(FeedEntry.id)))


def articles(engine) -> list[Article]:
    with Session(engine) as session:
        return list(session.exec(select(Article).order_by(Article.id)))


def feeds_by_url(engine) -> dict[str, Feed]:
    with Session(engine) as session:
        return {f.url: f for f in session.exec(select(Feed))}


def alerts(engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(Alert.id)))


# --- Feeds and pages --------------------------------------------------------------------


def test_rss_atom_and_a_news_sitemap_become_articles(engine, web):
    page(web, "/harbour", "Harbour report", HARBOUR)
    page(web, "/rail", "Rail figures", RAIL)
    page(web, "/budget", "Budget talks", BUDGET)
    add_feed(engine, feed(web, "/rss", rss([("h1", web.url("/harbour"), "Harbour")])), "Gazette")
    add_feed(engine, feed(web, "/atom", atom([("urn:r", web.url("/rail"), "Rail")])), "Herald")
    add_feed(engine, feed(web, "/news.xml", news_sitemap([(web.url("/budget"), "Budget")])))

    report = run_pass(engine, settings_for(engine))

    assert (report.count("read"), report.pages_read, report.extracted) == (3, 3, 3)
    stored = {a.title: a for a in articles(engine)}
    assert set(stored) == {"Harbour report", "Rail figures", "Budget talks"}
    assert (stored["Harbour report"].outlet, stored["Rail figures"].outlet) == ("Gazette", "Herald")
    assert stored["Budget talks"].url == web.url("/budget")
    assert "Copyright" not in stored["Budget talks"].text  # the HTML reader kept the article
    assert all(a.extraction_state == "extracted" for a in stored.values())
    with Session(engine) as session:
        assert session.exec(select(Claim)).first() is not None
    kinds = {f.url.rsplit("/", 1)[1]: f.kind for f in feeds_by_url(engine).values()}
    assert kinds == {"rss": "rss20", "atom": "atom10", "news.xml": "sitemap"}


def test_a_failing_feed_is_reported_retried_later_and_never_stops_the_others(engine, web, other):
    page(other, "/harbour", "Harbour report", HARBOUR)
    good = feed(other, "/good", rss([("h1", other.url("/harbour"), "Harbour")]))
    broken = {
        "malformed": feed(web, "/malformed", "<html><body>Not a feed <b>at all"),
        "missing": web.url("/gone"),
        "loop": web.route("/loop", Route(redirect="/loop")),
        "slow": feed(web, "/slow", rss([]), delay=4.0),
        "drip": feed(other, "/drip", rss([("x", other.url("/harbour"), "x")]), drip=0.05),
    }
    for url in [*broken.values(), good]:
        add_feed(engine, url)
    settings = settings_for(engine, fetch_max_redirects=3, fetch_timeout=1.5)
    now = utcnow()

    report = run_pass(engine, settings, now=now)

    errors = {f.url: f.error for f in report.feeds}
    assert errors[good] is None and report.pages_read == 1 and report.extracted == 1
    assert "not an RSS or Atom feed" in errors[broken["malformed"]]
    assert errors[broken["missing"]] == "HTTP 404 (not found)"
    assert errors[broken["loop"]] == "more than 3 redirects (a loop?)"
    assert len(web.hits("/loop")) == 4  # the first request and three redirects, no more
    assert errors[broken["slow"]] == errors[broken["drip"]] == "no complete answer within 1.5 s"
    text = "\n".join(describe_pass(report))
    assert "1 read" in text and "5 failed" in text and "HTTP 404" in text
    stored = feeds_by_url(engine)
    for url in broken.values():
        assert stored[url].failures == 1
        assert stored[url].next_check_at is not None

    # At once again: the failed feeds wait for their back-off; the good one is asked.
    again = run_pass(engine, settings, now=now + timedelta(seconds=10))
    assert again.count("waiting") == 5 and len(web.hits("/malformed")) == 1
    assert len(other.hits("/good")) == 2

    # After the back-off they are tried again, and a second failure waits twice as long.
    later = now + timedelta(seconds=61)
    run_pass(engine, settings, now=later)
    assert len(web.hits("/malformed")) == 2 and len(web.hits("/gone")) == 2
    retried = feeds_by_url(engine)[broken["missing"]]
    assert retried.failures == 2
    waited = retried.next_check_at.replace(tzinfo=None) - later.replace(tzinfo=None)
    assert timedelta(seconds=119) < waited <= timedelta(seconds=120)

    # A feed that answers again is back to normal.
    feed(web, "/malformed", rss([]))
    run_pass(engine, settings, now=later + timedelta(seconds=200))
    assert feeds_by_url(engine)[broken["malformed"]].failures == 0
    assert feeds_by_url(engine)[broken["malformed"]].error is None


def test_a_home_page_added_as_a_feed_names_its_feed(engine, web):
    home = web.route(
        "/",
        Route(
            "<!DOCTYPE html><html><head><title>Example News</title><link rel='alternate' "
            "type='application/rss+xml' href='/feeds/all.rss'></head><body>News</body></html>"
        ),
    )
    add_feed(engine, home)
    report = run_pass(engine, settings_for(engine))
    assert report.feeds[0].error == (
        f"a web page, not a feed; it names its feed: {web.url('/feeds/all.rss')}"
    )


def test_retry_after_is_honoured(engine, web):
    url = feed(web, "/busy", "", status=503, headers={"Retry-After": "3600"})
    add_feed(engine, url)
    now = utcnow()
    run_pass(engine, settings_for(engine), now=now)
    until = feeds_by_url(engine)[url].next_check_at.replace(tzinfo=None)
    assert until - now.replace(tzinfo=None) >= timedelta(seconds=3600)


def test_an_oversized_page_is_refused_and_the_rest_is_read(engine, web):
    page(web, "/harbour", "Harbour report", HARBOUR)
    page(web, "/huge", "Huge", ["Padding sentence number one. " * 4000])
    add_feed(engine, feed(web, "/rss", rss([("a", web.url("/huge"), "Huge"),
                                            ("b", web.url("/harbour"), "Harbour")])))  # fmt: skip

    report = run_pass(engine, settings_for(engine, fetch_max_bytes=50_000))

    assert [a.title for a in articles(engine)] == ["Harbour report"]
    huge = next(e for e in entries(engine) if e.url.endswith("/huge"))
    assert (huge.state, huge.error) == ("failed", "larger than the 0.05 MB limit")
    assert report.pages_failed == [(web.url("/huge"), "larger than the 0.05 MB limit")]
    run_pass(engine, settings_for(engine, fetch_max_bytes=50_000))
    assert len(web.hits("/huge")) == 1  # refused for good: not fetched again


def test_a_page_that_times_out_is_tried_again_then_given_up(engine, web):
    page(web, "/slow", "Slow", HARBOUR, delay=4.0)
    add_feed(engine, feed(web, "/rss", rss([("a", web.url("/slow"), "Slow")])))
    settings = settings_for(engine, fetch_timeout=1.5)
    first = run_pass(engine, settings)
    assert first.pages_failed == [(web.url("/slow"), "no complete answer within 1.5 s (will try "
                                   "again)")]  # fmt: skip
    assert entries(engine)[0].state == "pending"
    run_pass(engine, settings)
    run_pass(engine, settings)
    assert (entries(engine)[0].state, entries(engine)[0].attempts) == ("failed", 3)
    run_pass(engine, settings)
    assert len(web.hits("/slow")) == 3


def test_a_site_that_does_not_answer_costs_one_timeout_a_pass(engine, web):
    for n in range(4):
        page(web, f"/slow{n}", "Slow", [f"{s} ({n})" for s in HARBOUR], delay=4.0)
    add_feed(engine, feed(web, "/rss", rss([(f"{n}", web.url(f"/slow{n}"), "S")
                                            for n in range(4)])))  # fmt: skip
    report = run_pass(engine, settings_for(engine, fetch_timeout=1.5))
    assert (len(report.pages_failed), report.pages_waiting) == (2, 2)  # two timeouts in a row
    assert "2 left for the next pass (site down)" in describe_pass(report)[-1]
    assert sorted(e.attempts for e in entries(engine)) == [0, 0, 1, 1]
    assert all(e.state == "pending" for e in entries(engine))


def test_an_entry_repeated_across_feeds_is_read_once(engine, web):
    page(web, "/harbour", "Harbour report", HARBOUR)
    link = web.url("/harbour")
    add_feed(engine, feed(web, "/rss", rss([("one", link, "Harbour")])), "Gazette")
    add_feed(engine, feed(web, "/atom", atom([("urn:two", link + "?utm_source=atom#top",
                                               "Harbour")])), "Gazette")  # fmt: skip

    report = run_pass(engine, settings_for(engine))

    assert len(web.hits("/harbour")) == 1
    assert sum(f.new_entries for f in report.feeds) == 1
    assert len(entries(engine)) == 1 and len(articles(engine)) == 1


def test_a_guid_seen_before_is_not_new_even_with_another_link(engine, web):
    page(web, "/harbour", "Harbour report", HARBOUR)
    url = feed(web, "/rss", rss([("story-1", web.url("/harbour"), "Harbour")]))
    add_feed(engine, url)
    settings = settings_for(engine)
    run_pass(engine, settings)
    feed(web, "/rss", rss([("story-1", web.url("/harbour?page=2"), "Harbour, updated")]))
    second = run_pass(engine, settings)
    assert sum(f.new_entries for f in second.feeds) == 0
    assert len(web.hits("/harbour")) == 1


def test_the_same_wire_story_from_two_outlets_is_one_article_with_two_appearances(engine, web):
    """Wire copy run as it came (same headline, same text) on two sites: one article.
    (A re-headlined copy is another text: its claims are matched to these instead.)"""
    page(web, "/gazette/port", "Port figures", HARBOUR)
    page(web, "/herald/cargo", "Port figures", HARBOUR)
    add_feed(engine, feed(web, "/g", rss([("g1", web.url("/gazette/port"), "Port")])), "Gazette")
    add_feed(engine, feed(web, "/h", rss([("h1", web.url("/herald/cargo"), "Cargo")])), "Herald")

    report = run_pass(engine, settings_for(engine))

    assert (report.pages_read, report.same_text, report.extracted) == (2, 1, 1)
    [article] = articles(engine)
    assert [(a.outlet, a.url) for a in appearances(engine, article.id)] == [
        ("Gazette", web.url("/gazette/port")),
        ("Herald", web.url("/herald/cargo")),
    ]
    assert article.outlet == "Gazette"  # the first appearance's; the second does not move it
    with Session(engine) as session:
        claims = session.exec(select(Claim).where(Claim.article_id == article.id)).all()
    assert claims and len({c.quote_start for c in claims}) == len(claims)  # extracted once


def test_an_unchanged_feed_costs_a_304_and_nothing_else(engine, web):
    page(web, "/harbour", "Harbour report", HARBOUR)
    add_feed(engine, feed(web, "/rss", rss([("a", web.url("/harbour"), "H")]), etag='"v7"'))
    settings, robots = settings_for(engine), {}
    run_pass(engine, settings, robots=robots)
    second = run_pass(engine, settings, robots=robots)  # as `watch` runs them
    assert second.count("unchanged") == 1 and second.requests == 1  # robots.txt was kept
    assert web.hits("/rss")[1].headers.get("If-None-Match") == '"v7"'
    assert len(web.hits("/harbour")) == 1


def test_robots_txt_and_the_user_agent(engine, web):
    web.route("/robots.txt", Route("User-agent: *\nDisallow: /private/\n",
                                   content_type="text/plain"))  # fmt: skip
    page(web, "/private/memo", "Memo", RAIL)
    page(web, "/harbour", "Harbour report", HARBOUR)
    add_feed(engine, feed(web, "/rss", rss([("a", web.url("/private/memo"), "Memo"),
                                            ("b", web.url("/harbour"), "H")])))  # fmt: skip
    settings = settings_for(engine, user_agent="ClaimTracker/0.1 (desk@example.org)")

    run_pass(engine, settings)

    assert web.hits("/private/memo") == []
    memo = next(e for e in entries(engine) if "memo" in e.url)
    assert (memo.state, memo.error) == ("failed", "robots.txt does not allow us to fetch this")
    agents = {r.headers.get("User-Agent") for r in web.requests}
    assert agents == {"ClaimTracker/0.1 (desk@example.org)"}


def test_robots_txt_that_keeps_out_our_agent_keeps_out_the_feed(engine, web):
    web.route("/robots.txt", Route("User-agent: ClaimTracker\nDisallow: /\n",
                                   content_type="text/plain"))  # fmt: skip
    url = feed(web, "/rss", rss([]))
    add_feed(engine, url)
    report = run_pass(engine, settings_for(engine))
    assert report.feeds[0].error == "robots.txt does not allow us to fetch this"
    assert web.hits("/rss") == []


def test_an_unreadable_robots_txt_keeps_us_off_the_site_until_it_answers(engine, web):
    web.route("/robots.txt", Route("down", status=503, content_type="text/plain"))
    url = feed(web, "/rss", rss([]))
    add_feed(engine, url)
    now = utcnow()
    report = run_pass(engine, settings_for(engine), now=now)
    assert report.feeds[0].error == (
        "robots.txt could not be read (HTTP 503): nothing is fetched from this site until it can"
    )
    assert web.hits("/rss") == []
    web.route("/robots.txt", Route("User-agent: *\nAllow: /\n", content_type="text/plain"))
    later = run_pass(engine, settings_for(engine), now=now + timedelta(minutes=2))
    assert later.count("read") == 1 and len(web.hits("/rss")) == 1


def test_one_host_is_asked_one_request_at_a_time_with_a_pause(engine, web):
    for n in range(3):
        page(web, f"/p{n}", f"Page {n}", [f"{s} Story {n}." for s in HARBOUR])
    add_feed(engine, feed(web, "/rss", rss([(f"g{n}", web.url(f"/p{n}"), "P") for n in range(3)])))
    run_pass(engine, settings_for(engine, host_interval=0.3))
    times = sorted(r.at for r in web.requests)
    assert len(times) == 5  # robots.txt, the feed, three pages
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.29


def test_a_link_from_a_public_feed_may_not_lead_into_the_network(web):
    page(web, "/admin", "Admin", HARBOUR)
    settings = make_settings("sqlite://", host_interval=0.0)

    async def fetch():
        async with Fetcher(settings) as fetcher:
            with pytest.raises(FetchError, match="local or private network"):
                await fetcher.get(web.url("/admin"), allow_private=False)
            assert web.hits("/admin") == []
            assert await fetcher.is_private(web.url("/rss"))
            assert await fetcher.is_private("http://[::1]:8080/")
            assert await fetcher.is_private("http://169.254.169.254/latest/meta-data/")
            assert not await fetcher.is_private("http://93.184.215.14/feed")  # (not asked)
            return await fetcher.get(web.url("/admin"), allow_private=True)

    assert asyncio.run(fetch()).status == 200 and len(web.hits("/admin")) == 1


def test_feed_text_is_untrusted(engine, web):
    hostile = (
        "<?xml version='1.0'?><rss version='2.0'><channel>"
        "<title>News\u202e\x1b[31m <script>alert(1)</script></title>"
        "<item><guid>a</guid><link>javascript:alert(1)</link><title>x</title></item>"
        "<item><guid>b</guid><link>file:///etc/passwd</link><title>y</title></item>"
        f"<item><guid>c</guid><link>{web.url('/harbour')}</link>"
        f"<title>{'Long title ' * 200}\x07</title></item>"
        "</channel></rss>"
    )
    page(web, "/harbour", "Harbour report", HARBOUR)
    url = feed(web, "/rss", hostile)
    add_feed(engine, url)
    local = feed(web, "/path", "/etc/passwd")  # feedparser must not open it as a file
    add_feed(engine, local)

    report = run_pass(engine, settings_for(engine))

    [entry] = entries(engine)
    assert entry.url == web.url("/harbour")
    assert len(entry.title) <= 500 and "\x07" not in entry.title
    title = feeds_by_url(engine)[url].title
    assert "\u202e" not in title and "\x1b" not in title
    assert "not an RSS or Atom feed" in next(f.error for f in report.feeds if f.url == local)


# --- Managing feeds -------------------------------------------------------------------------


def test_feeds_are_added_once_listed_and_removed_keeping_their_appearances(engine, web):
    page(web, "/harbour", "Harbour report", HARBOUR)
    url = feed(web, "/rss", rss([("a", web.url("/harbour"), "H")]))
    add_feed(engine, url, "Gazette")
    with pytest.raises(ValueError, match="followed already"):
        add_feed(engine, url)
    with pytest.raises(ValueError, match="not a web address"):
        add_feed(engine, "ftp://example.org/feed")
    run_pass(engine, settings_for(engine))
    [status] = feed_statuses(engine)
    assert (status.entries, status.articles, status.failed_pages) == (1, 1, 0)
    remove_feed(engine, url)
    assert feed_statuses(engine) == []
    [article] = articles(engine)
    assert [a.url for a in appearances(engine, article.id)] == [web.url("/harbour")]
    with pytest.raises(LookupError):
        remove_feed(engine, url)


def test_only_admins_manage_feeds_from_the_dashboard(engine, monkeypatch):
    monkeypatch.setenv("TRACKER_ADMINS", "Boss")
    from tracker import config

    config.get_settings.cache_clear()
    with pytest.raises(NotAllowed):
        add_feed(engine, "https://news.example/rss", actor="Ana")
    added = add_feed(engine, "https://news.example/rss", actor="Boss")
    assert added.added_by == "Boss"
    with pytest.raises(NotAllowed):
        remove_feed(engine, added.id, actor="Ana")


# --- Alerts ---------------------------------------------------------------------------------


def test_feed_to_claim_to_a_repeated_fact_checked_claim_raises_one_alert(engine, web):
    """The issue's end-to-end test: feed, article, claims, a claim matching a loaded
    ClaimReview, one alert received by the webhook; a second pass adds nothing."""
    import_factchecks(engine, [FACT_CHECK])
    page(web, "/budget", "Budget talks", BUDGET)
    web.route("/hooks/T0001/B0002/s3cr3tT0kenXYZ", Route("ok", content_type="text/plain"))
    hook = web.url("/hooks/T0001/B0002/s3cr3tT0kenXYZ")
    add_feed(engine, feed(web, "/rss", rss([("b1", web.url("/budget"), "Budget")]), etag='"1"'),
             "Gazette")  # fmt: skip
    settings = settings_for(engine, alert_webhook=hook, dashboard_url="https://desk.example/")

    first = run_pass(engine, settings)

    assert (first.alerts, first.delivery.sent) == (1, 1)
    [alert] = alerts(engine)
    assert (alert.kind, alert.verdict, alert.matched_source) == ("fact_check", "Misleading",
                                                                  "Fact Org")  # fmt: skip
    assert alert.score >= 0.7 and alert.webhook_state == "sent"
    with Session(engine) as session:
        claim = session.get(Claim, alert.claim_id)
    assert "3.1 percent" in claim.text and alert.article_url == web.url("/budget")
    [body] = web.posted("/hooks/T0001/B0002/s3cr3tT0kenXYZ")
    assert body["text"].startswith("Repeated claim")
    assert "Misleading" in body["text"] and "Fact Org" in body["text"]
    assert f"<https://desk.example/claim?claim={claim.id}|Open the claim>" in body["text"]
    assert body["claim"] == {"id": claim.id, "text": claim.text,
                             "url": f"https://desk.example/claim?claim={claim.id}"}  # fmt: skip
    assert body["article"]["title"] == "Budget talks" and body["article"]["outlet"] == "Gazette"
    assert body["matched"]["url"] == "https://factcheck.example/unemployment"
    assert body["score"] == alert.score

    second = run_pass(engine, settings)

    assert (second.alerts, second.delivery.sent, second.pages_read) == (0, 0, 0)
    assert len(alerts(engine)) == 1
    assert len(web.posted("/hooks/T0001/B0002/s3cr3tT0kenXYZ")) == 1


def test_with_a_worker_running_watch_leaves_extraction_to_the_workers(engine, web):
    """A `tracker worker` is alive: the pass stores the new page as a pending article and
    leaves it in the queue; the alert comes on the pass after a worker stored its claims."""
    from tracker import lease
    from tracker.workqueue import register, work

    import_factchecks(engine, [FACT_CHECK])
    page(web, "/budget", "Budget talks", BUDGET)
    add_feed(engine, feed(web, "/rss", rss([("b1", web.url("/budget"), "Budget")])), "Gazette")
    settings = settings_for(engine)
    register(engine, lease.new_owner(), 2)  # a worker of this (living) process

    first = run_pass(engine, settings)

    assert (first.pages_read, first.extracted, first.queued, first.alerts) == (1, 0, 1, 0)
    assert "1 queued for the workers" in describe_pass(first)[-1]
    [article] = articles(engine)
    assert article.extraction_state == "pending"

    asyncio.run(work(engine, settings, concurrency=2, until_empty=True, poll=0.1))
    second = run_pass(engine, settings)

    assert (second.pages_read, second.queued, second.alerts) == (0, 0, 1)
    [alert] = alerts(engine)
    assert alert.kind == "fact_check" and alert.verdict == "Misleading"


def test_a_repeat_of_a_claim_the_desk_checked_raises_an_alert_and_an_open_one_does_not(engine, web):
    page(web, "/budget", "Budget talks", BUDGET)
    page(web, "/rally", "Mayor on the stump", REPEAT)
    page(web, "/debate", "The debate", [REPEAT[1].replace("told supporters", "said on air"),
                                        "The debate ran for two hours."])  # fmt: skip
    items = [("b", web.url("/budget"), "Budget")]
    url = feed(web, "/rss", rss(items))
    add_feed(engine, url, "Gazette")
    settings = settings_for(engine)
    assert run_pass(engine, settings).alerts == 0
    items.append(("r", web.url("/rally"), "Rally"))
    feed(web, "/rss", rss(items))
    assert run_pass(engine, settings).alerts == 0  # the same claim, but nobody checked it yet
    with Session(engine) as session:
        original = session.exec(
            select(Claim).where(Claim.text.startswith("Mayor Jane Smith said"))
        ).one()
    set_status(engine, original.id, "disputed", actor="Ana", expected_version=original.version)

    items.append(("d", web.url("/debate"), "Debate"))
    feed(web, "/rss", rss(items))
    report = run_pass(engine, settings)

    assert report.alerts == 1
    [alert] = alerts(engine)
    assert (alert.kind, alert.matched_claim_id, alert.verdict) == ("claim", original.id,
                                                                    "disputed")  # fmt: skip
    assert alert.how.startswith(("suggested", "linked")) and alert.score >= settings.match_suggest
    assert alert.article_title == "The debate" and "Budget talks" in alert.matched_source
    assert alert.matched_url == f"http://localhost:8501/claim?claim={original.id}"
    assert alert.webhook_state == "off"  # no webhook configured
    assert recent(engine)[0].id == alert.id


def test_a_link_into_a_cluster_with_a_verdict_raises_an_alert_for_that_verdict(engine):
    """The new claim was linked to an unreviewed claim whose cluster holds a checked one;
    the alert waits until the new claims were compared with earlier ones."""
    from tracker.alerts import raise_alerts
    from tracker.ingest import add_article
    from tracker.models import ArticleCreate, ClaimMatch

    def stored(text: str, status: str = "unreviewed", **article) -> Claim:
        row, _ = add_article(engine, ArticleCreate(text=text, **article))
        with Session(engine) as session:
            claim = Claim(article_id=row.id, text=text, quote=text, quote_start=0,
                          quote_end=len(text), checkworthiness=0.9, status=status)  # fmt: skip
            session.add(claim)
            session.exec(
                sa.update(Article).where(Article.id == row.id)
                .values(extraction_state="extracted", extracted_at=utcnow())
            )  # fmt: skip
            session.commit()
            session.refresh(claim)
            return claim

    checked = stored("Bus fares doubled since 2019.", "checked", title="Fares", outlet="Wire")
    echo = stored("Bus fares have doubled since 2019, he said.")
    new = stored("Since 2019, bus fares doubled.", title="Transit speech")
    with Session(engine) as session:
        for claim in (checked, echo, new):
            session.exec(sa.update(Claim).where(Claim.id == claim.id)
                         .values(cluster_id=checked.id))  # fmt: skip
        session.add(ClaimMatch(claim_id=new.id, other_id=echo.id, score=0.96, state="linked"))
        session.add(FeedEntry(url="https://x.example/speech", url_key="k", state="stored",
                              article_id=new.article_id))  # fmt: skip
        session.commit()

    # Stored by a worker but not yet compared with earlier claims: no alert yet (its matches
    # are not known), and the article is looked at again on the next pass.
    assert raise_alerts(engine, settings_for(engine)) == []
    with Session(engine) as session:  # what tracker.matching.match_pending records
        session.exec(sa.update(Claim).values(matched_at=utcnow()))
        session.commit()
    [alert_id] = raise_alerts(engine, settings_for(engine))

    [alert] = alerts(engine)
    assert (alert.id, alert.matched_claim_id, alert.verdict) == (alert_id, checked.id, "checked")
    assert (alert.how, alert.score, alert.matched_source) == ("linked, same cluster", 0.96,
                                                              "Fares — Wire")  # fmt: skip
    assert raise_alerts(engine, settings_for(engine)) == []


def test_the_webhook_url_is_a_secret_but_its_words_are_not():
    from tracker.config import webhook_secrets
    from tracker.sanitize import scrub

    url = "https://hooks.slack.example/services/T0AB12CD3/B0EF45GH6/aBcDeFgHiJkLmNoPqRsTuVwX"
    settings = make_settings("sqlite://", alert_webhook=url)
    text = f"POST {url} failed; see /services/T0AB12CD3 and the services page"
    shown = scrub(text, settings.secrets())
    assert "aBcDeFgHiJkLmNoPqRsTuVwX" not in shown and "T0AB12CD3" not in shown
    assert "the services page" in shown and "hooks.slack.example" not in shown
    assert webhook_secrets(url)[0] == url  # the longest first: the whole URL goes as one


def test_the_webhook_is_retried_with_back_off_and_its_secret_never_shown(
    engine, web, monkeypatch, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)  # as a deployment that logs everything would
    import_factchecks(engine, [FACT_CHECK])
    page(web, "/budget", "Budget talks", BUDGET)
    secret_path = "/services/T000/B000/XyZsecretWebhookToken42"
    web.route(secret_path, Route("no", status=500, statuses=[500, 502]))
    add_feed(engine, feed(web, "/rss", rss([("b", web.url("/budget"), "Budget")])))
    settings = settings_for(engine, alert_webhook=web.url(secret_path))
    monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
    now = utcnow()

    first = run_pass(engine, settings, now=now)
    assert (first.alerts, first.delivery.sent, first.delivery.errors) == (1, 0, ["HTTP 500"])
    stats = CliRunner().invoke(app, ["stats"])
    assert "webhook: 0 sent, 1 waiting, 0 failed" in stats.output
    assert "last webhook error: HTTP 500" in stats.output

    assert run_pass(engine, settings, now=now + timedelta(seconds=30)).delivery.failed == 0
    assert len(web.hits(secret_path, "POST")) == 1  # not before its back-off (60 s)
    assert run_pass(engine, settings, now=now + timedelta(seconds=61)).delivery.errors == [
        "HTTP 502"
    ]
    web.routes[secret_path] = Route("ok", content_type="text/plain")
    third = run_pass(engine, settings, now=now + timedelta(seconds=61 + 121))
    assert third.delivery.sent == 1
    run_pass(engine, settings, now=now + timedelta(days=1))
    bodies = web.posted(secret_path)
    assert len(bodies) == 3 and len({b["pair_key"] for b in bodies}) == 1  # one alert, sent once
    assert [r.headers["Idempotency-Key"] for r in web.hits(secret_path, "POST")] == [
        f"alert-{bodies[0]['pair_key']}"
    ] * 3

    watched = CliRunner().invoke(app, ["watch", "--once"])
    listed = CliRunner().invoke(app, ["feeds", "list", "--json"])
    stats = CliRunner().invoke(app, ["stats", "--json"])
    assert '"sent": 1' in stats.output
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*.db*"))
    assert "HTTP Request: POST" in caplog.text  # the HTTP client logged every request
    for token in ("XyZsecretWebhookToken42", secret_path):
        assert token not in watched.output + listed.output + stats.output + caplog.text
        assert token.encode() not in stored
    assert settings.alert_webhook.get_secret_value() not in repr(settings)


def test_a_webhook_that_is_down_is_tried_once_a_pass(engine, web):
    import_factchecks(engine, [FACT_CHECK, FACT_CHECK.model_copy(update={
        "claim_reviewed": "The harbour's cargo volumes rose by 12 percent last year",
        "url": "https://factcheck.example/harbour"})])  # fmt: skip
    page(web, "/budget", "Budget talks", BUDGET)
    page(web, "/harbour", "Harbour report", HARBOUR)
    add_feed(engine, feed(web, "/rss", rss([("b", web.url("/budget"), "B"),
                                            ("h", web.url("/harbour"), "H")])))  # fmt: skip
    web.route("/hook", Route("busy", status=503))
    settings = settings_for(engine, alert_webhook=web.url("/hook"))
    report = run_pass(engine, settings)
    assert report.alerts == 2 and report.delivery.errors == ["HTTP 503"]
    assert len(web.hits("/hook", "POST")) == 1
    assert sorted(a.webhook_attempts for a in alerts(engine)) == [0, 1]


def test_a_webhook_that_keeps_failing_is_given_up_and_shown(engine, web):
    from tracker import alerts as alerting

    import_factchecks(engine, [FACT_CHECK])
    page(web, "/budget", "Budget talks", BUDGET)
    add_feed(engine, feed(web, "/rss", rss([("b", web.url("/budget"), "Budget")])))
    settings = settings_for(engine, alert_webhook=web.url("/nowhere"))
    now = utcnow()
    for attempt in range(alerting.WEBHOOK_ATTEMPTS + 2):
        run_pass(engine, settings, now=now + timedelta(hours=7 * attempt))
    [alert] = alerts(engine)
    assert (alert.webhook_state, alert.webhook_attempts) == ("failed", alerting.WEBHOOK_ATTEMPTS)
    lines = monitoring_lines(collect(engine, settings)["monitoring"])
    assert "webhook: 0 sent, 0 waiting, 1 failed" in lines[1]
    assert lines[2] == "  last webhook error: HTTP 404"


def test_untrusted_text_cannot_ping_the_channel_or_forge_a_link(engine, web):
    from tracker.alerts import payload

    import_factchecks(engine, [FACT_CHECK])
    said = BUDGET[1].replace("Mayor", "<!channel> <https://evil.example|Mayor>")
    page(web, "/budget", "Budget &lt;!here&gt; talks", [BUDGET[0], html.escape(said), BUDGET[2]])
    add_feed(engine, feed(web, "/rss", rss([("b", web.url("/budget"), "Budget")])))
    settings = settings_for(engine)
    run_pass(engine, settings)
    [alert] = alerts(engine)
    text = payload(alert, settings)["text"]
    assert "<!channel>" not in text and "<!here>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text
    assert text.count("<") == 1  # only our own link to the claim page


def test_acknowledging_needs_a_reviewer_and_keeps_the_first(engine, web):
    import_factchecks(engine, [FACT_CHECK])
    page(web, "/budget", "Budget talks", BUDGET)
    add_feed(engine, feed(web, "/rss", rss([("b", web.url("/budget"), "Budget")])))
    run_pass(engine, settings_for(engine))
    [alert] = alerts(engine)
    from tracker.db import session_scope
    from tracker.models import Reviewer
    from tracker.people import person_key

    with session_scope(engine) as session:
        session.add(Reviewer(name="Vic", name_key=person_key("Vic"), role="viewer"))
    with pytest.raises(NotAllowed):
        acknowledge(engine, alert.id, actor="Vic")
    done = acknowledge(engine, alert.id, actor="Ana")
    again = acknowledge(engine, alert.id, actor="Ben")
    assert (done.acknowledged_by, again.acknowledged_by) == ("Ana", "Ana")
    assert recent(engine, unacknowledged=True) == []


def test_watch_repeats_its_pass_and_outlives_a_failed_one(engine, web, monkeypatch):
    from tracker import monitor

    page(web, "/harbour", "Harbour report", HARBOUR)
    add_feed(engine, feed(web, "/rss", rss([("a", web.url("/harbour"), "H")])))
    real, calls, reports, errors, naps = monitor.run_pass, [], [], [], []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(monitor, "run_pass", flaky)
    with pytest.raises(KeyboardInterrupt):
        monitor.watch(engine, settings_for(engine), interval=600, on_pass=reports.append,
                      on_error=errors.append, sleep=nap)  # fmt: skip
    assert len(calls) == 3 and [r.pages_read for r in reports] == [1, 0]
    assert errors == ["the pass failed: RuntimeError: database went away"]
    assert all(590 < n <= 600 for n in naps)  # from the start of one pass to the next


# --- The command line -----------------------------------------------------------------------


def test_feeds_and_watch_from_the_command_line(engine, web, monkeypatch):
    page(web, "/harbour", "Harbour report", HARBOUR)
    good = feed(web, "/rss", rss([("a", web.url("/harbour"), "Harbour")]))
    settings = settings_for(engine)
    monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
    runner = CliRunner()

    assert runner.invoke(app, ["feeds", "add", good, "--outlet", "Gazette"]).exit_code == 0
    assert runner.invoke(app, ["feeds", "add", web.url("/gone")]).exit_code == 0
    refused = runner.invoke(app, ["feeds", "add", "not a url"])
    assert refused.exit_code == 1 and "not a web address" in refused.output

    watched = runner.invoke(app, ["watch", "--once"])
    assert watched.exit_code == 1  # a feed failed
    assert f"✗ feed 2 {web.url('/gone')}: HTTP 404 (not found); next try after" in watched.output
    assert "2 feeds: 1 read, 0 unchanged, 1 failed" in watched.output
    assert "1 pages read" in watched.output and "1 articles extracted" in watched.output

    listed = runner.invoke(app, ["feeds", "list"]).output
    assert f"1  {good}  Gazette (Example News)" in listed
    assert "ok, last read" in listed and "1 entries, 1 read, 0 unreadable" in listed
    assert "failing (1 in a row): HTTP 404 (not found); next try after" in listed

    stats = runner.invoke(app, ["stats"]).output
    assert "Monitoring: 2 feeds (1 failing), 1 entries (1 read, 0 to read, 0 unreadable)" in stats

    assert runner.invoke(app, ["feeds", "remove", web.url("/gone")]).exit_code == 0
    assert runner.invoke(app, ["watch", "--once"]).exit_code == 0
    missing = runner.invoke(app, ["feeds", "remove", web.url("/gone")])
    assert missing.exit_code == 1 and "no such feed" in missing.output
