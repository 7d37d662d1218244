"""The desk's side of monitoring, walked in Chromium: a repeated claim found by
`tracker watch` (feed and page on a loopback server, a loaded ClaimReview) is on the Repeats
page; a reviewer opens its claim and acknowledges it; an admin adds and removes a feed on
the Feeds page. Screenshots go to test-artifacts/ (repeats-*.png, feeds-*.png)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    dashboard,
    eventually,
    nav,
    settled,
    shot,
    type_name,
    wait_for,
)
from tests.test_monitor import BUDGET, FACT_CHECK, RSS_TYPE, settings_for
from tests.webserver import Route, WebServer, article_page, rss
from tracker.claimreview import import_factchecks
from tracker.db import get_engine
from tracker.feeds import add_feed
from tracker.models import Alert, Feed
from tracker.monitor import run_pass

pytestmark = pytest.mark.browser


@pytest.fixture
def page(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        tab = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
        tab.set_default_timeout(20_000)
        yield tab
        browser.close()


@pytest.fixture
def watched(tmp_path):
    """A database where `tracker watch` has raised one alert, and the dashboard over it."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    engine = get_engine(url)
    import_factchecks(engine, [FACT_CHECK])
    with WebServer() as web:
        web.route("/budget", Route(article_page("Budget talks", BUDGET)))
        feed = web.route("/rss", Route(rss([("b", web.url("/budget"), "B")]),
                                       content_type=RSS_TYPE))  # fmt: skip
        add_feed(engine, feed, "Gazette")
        assert run_pass(engine, settings_for(engine)).alerts == 1
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"TRACKER_ADMINS": "Boss", "TRACKER_TRUST_TYPED_NAMES": "true"}
    with dashboard(url, env=env, cwd=tmp_path) as address:
        yield address, engine


def _alert(engine) -> Alert:
    with Session(engine) as session:
        return session.exec(select(Alert)).one()


def test_a_reviewer_opens_and_acknowledges_a_repeated_claim(watched, page):
    url, engine = watched
    alert = _alert(engine)
    page.goto(url + "/")
    type_name(page, "Ana")
    nav(page, "Repeats")
    page.get_by_text("1 alert, 1 not acknowledged").wait_for()
    assert page.get_by_text(f"New claim: {alert.claim_text}").is_visible()
    assert page.get_by_text("Matches a fact-check by Fact Org, rated Misleading:").is_visible()
    assert page.get_by_role("link", name="Read the fact-check").get_attribute("href") == (
        "https://factcheck.example/unemployment"
    )
    shot(page, "repeats-new-alert")

    page.get_by_role("button", name="Open the claim").click()
    page.get_by_role("heading", name=f"Claim {alert.claim_id}").wait_for()
    settled(page)
    assert page.get_by_text("Already checked").is_visible()  # the claim page agrees

    page.goto(url + f"/articles?article={alert.article_id}")
    page.get_by_role("heading", name=f"Article {alert.article_id}").wait_for()
    assert page.get_by_text("Seen in the feeds:").is_visible()  # its appearances
    shot(page, "repeats-article-appearances")

    type_name(page, "Ana")  # (a new page load is a new session)
    nav(page, "Repeats")
    page.get_by_role("button", name="Acknowledge").click()
    wait_for(lambda: _alert(engine).acknowledged_by == "Ana", what="the acknowledgement")
    eventually(lambda: page.get_by_text("Nothing to acknowledge.").wait_for(timeout=1_000))
    page.get_by_text("Show acknowledged alerts too").click()
    settled(page)
    assert page.get_by_text("Acknowledged by Ana").is_visible()
    assert page.get_by_role("button", name="Acknowledge").count() == 0
    shot(page, "repeats-acknowledged")


def test_an_admin_adds_and_removes_a_feed(watched, page):
    url, engine = watched
    page.goto(url + "/")
    type_name(page, "Ana")
    nav(page, "Feeds")
    assert page.get_by_text("Adding and removing feeds needs the admin role.").is_visible()
    type_name(page, "Boss")
    settled(page)
    page.get_by_role("textbox", name="Feed URL").fill("https://herald.example/politics.rss")
    page.get_by_role("textbox", name="Outlet").fill("Herald")
    page.get_by_role("button", name="Add feed").click()
    wait_for(lambda: len(_feeds(engine)) == 2, what="the new feed")
    settled(page)
    assert _feeds(engine)["https://herald.example/politics.rss"] == ("Herald", "Boss")
    shot(page, "feeds-added")

    page.get_by_role("textbox", name="Feed URL").fill("javascript:alert(1)")
    page.get_by_role("button", name="Add feed").click()
    page.get_by_text("not a web address").wait_for()

    page.get_by_role("button", name="Remove feed").click()  # the first one, the Gazette's
    wait_for(lambda: len(_feeds(engine)) == 1, what="the removal")
    assert list(_feeds(engine)) == ["https://herald.example/politics.rss"]
    settled(page)
    shot(page, "feeds-removed")


def _feeds(engine) -> dict[str, tuple[str | None, str | None]]:
    with Session(engine) as session:
        return {f.url: (f.outlet, f.added_by) for f in session.exec(select(Feed))}
