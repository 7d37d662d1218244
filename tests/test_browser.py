"""A reviewer's day, walked in a real browser as a person does it: type, press Enter, click,
switch pages, reload. `streamlit run app.py` on loopback, Debian's Chromium through
Playwright. Screenshots of every page go to test-artifacts/.

The first four tests are the regressions a new user found in Chromium while every
AppTest test passed: the name dropped on the claim page, every second filter change
lost, Export ignoring the filter, the queue forgetting its place.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import Session, select

from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    HEADER,
    ROW,
    assert_equal,
    changed,
    choose,
    choose_in,
    click_grid,
    click_header,
    click_row,
    dashboard,
    eventually,
    grid_text,
    matching,
    nav,
    params,
    search,
    seed_desk,
    settled,
    shot,
    sidebar,
    summary,
    table_cells,
    type_name,
    wait_for,
)
from tracker.db import get_engine
from tracker.models import Claim, ReviewEvent
from tracker.review import dismiss, set_status

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def desk(tmp_path, request) -> Iterator[tuple[str, object]]:
    """A database of 120 claims in three articles, and the dashboard over it."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    engine = get_engine(url)
    seed_desk(engine)
    env = getattr(request, "param", None) or {}
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard(url, env=env, cwd=tmp_path) as address:
        yield address, engine


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=ARTIFACTS / f"failed-{request.node.name}.png", full_page=True)
    context.close()


# --- Regressions --------------------------------------------------------------------------


def test_the_name_holds_on_every_page(desk, page):
    """Regression: the name typed on the queue was dropped on the claim page (Save
    disabled), on page switches and through Save and next."""
    url, engine = desk
    page.goto(url + "/")
    type_name(page, "Ana Reviewer")
    click_row(page, 0)
    page.get_by_role("heading", name=re.compile(r"^Claim \d+")).wait_for()
    settled(page)
    assert sidebar(page).get_by_text("Role: reviewer").is_visible()
    assert page.get_by_role("button", name="Save", exact=True).is_enabled()
    first = int(params(page)["claim"][0])

    for title in ("Articles", "Overview", "Export", "Review queue"):
        nav(page, title)
        assert sidebar(page).get_by_text("Role: reviewer").is_visible(), title
    box = page.get_by_role("textbox", name="Open claim by id")
    box.fill(str(first))
    box.press("Enter")
    page.get_by_role("heading", name=f"Claim {first}").wait_for()
    settled(page)
    page.get_by_text("checked", exact=True).first.click()
    page.get_by_role("button", name="Save and next").click()
    page.wait_for_url(lambda u: parse_qs(urlsplit(u).query).get("claim") != [str(first)],
                      wait_until="commit")  # fmt: skip
    settled(page)
    assert page.get_by_role("button", name="Save", exact=True).is_enabled()
    assert sidebar(page).get_by_role("textbox", name="Your name").input_value() == "Ana Reviewer"
    shot(page, "claim-after-save-and-next")
    with Session(engine) as session:
        event = session.exec(select(ReviewEvent)).one()
    assert (event.actor, event.claim_id, event.to_value) == ("Ana Reviewer", first, "checked")


def test_every_filter_change_is_applied_once(desk, page):
    """Regression: every second change was lost (deficit, jobs: the box jumped back)."""
    url, _ = desk
    page.goto(url + "/")
    settled(page)
    everything = matching(page)
    for word in ("deficit", "taxes", "schools", "jobs"):
        search(page, word)
        assert (
            sidebar(page).get_by_role("textbox", name="Search claims and quotes").input_value()
            == word
        )
        assert params(page)["search"] == [word]

        def only(word=word):
            texts = table_cells(page, "claim")
            assert texts and all(word in text for text in texts), (word, texts[:3])
            assert_equal(matching(page), 20)  # each topic is a sixth of the claims

        eventually(only)
    assert everything == 120

    choose(page, "Status", "unreviewed")
    eventually(lambda: assert_equal(params(page).get("statuses"), ["unreviewed"]))
    choose(page, "Claim type", "statistic")
    eventually(lambda: assert_equal(params(page).get("claim_types"), ["statistic"]))
    choose(page, "Sort", "newest first")
    eventually(lambda: assert_equal(params(page).get("sort"), ["newest first"]))

    def newest_first():
        ids = [int(i) for i in table_cells(page, "id")]
        assert ids == sorted(ids, reverse=True), ids

    eventually(newest_first)
    assert params(page)["search"] == ["jobs"]  # the earlier changes hold
    assert matching(page) > 0
    shot(page, "queue-filtered")

    page.reload()
    settled(page)
    box = sidebar(page).get_by_role("textbox", name="Search claims and quotes")
    eventually(lambda: assert_equal(box.input_value(), "jobs"))
    assert params(page)["claim_types"] == ["statistic"] and params(page)["sort"] == ["newest first"]


def test_export_follows_the_queue_filter(desk, page):
    """Regression: the queue showed 11 claims, Export offered all of them."""
    url, _ = desk
    page.goto(url + "/")
    search(page, "deficit")
    shown = matching(page)
    nav(page, "Export")
    button = page.get_by_role("button", name=f"Download {shown} claims as CSV")
    with page.expect_download() as download:
        button.click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == shown
    assert all("deficit" in row["text"] for row in rows)
    assert {"status", "review_note", "reviewed_by", "reviewed_at", "rating", "assignee",
            "dismissed"} <= set(rows[0])  # fmt: skip
    shot(page, "export")


def test_back_to_queue_returns_to_the_same_filter_page_and_row(desk, page):
    """Regression: back from a claim, the queue forgot its filter and page; and a column
    header click sorted only the 50 rows on screen."""
    url, _ = desk
    page.goto(url + "/?claim_types=statistic")
    settled(page)
    assert matching(page) == 80
    first_page = table_cells(page, "id")
    page.get_by_role("button", name="Page 2", exact=True).click()  # the second page
    settled(page)
    eventually(lambda: assert_equal(summary(page).split(" · ")[2], "page 2 of 2"))
    second_page = eventually(lambda: changed(table_cells(page, "id"), first_page))
    picked = second_page[3]
    click_row(page, 3)
    page.get_by_role("heading", name=f"Claim {picked}").wait_for()
    settled(page)
    page.get_by_role("button", name="← Back to queue").click()
    page.get_by_role("heading", name="Review queue").wait_for()
    settled(page)
    assert params(page)["claim_types"] == ["statistic"]
    eventually(lambda: assert_equal(summary(page).split(" · ")[2], "page 2 of 2"))

    def marked():
        ids, marks = table_cells(page, "id"), table_cells(page, "")
        assert_equal([i for i, mark in zip(ids, marks, strict=True) if mark], [picked])

    eventually(marked)

    # A click on the id header sorts the whole queue (newest first), not this page.
    click_header(page, "id")
    eventually(lambda: assert_equal(params(page).get("sort"), ["newest first"]))
    eventually(lambda: assert_equal(summary(page).split(" · ")[2], "page 1 of 2"))
    eventually(lambda: assert_equal(table_cells(page, "id")[0], "120"))  # newest of all
    shot(page, "queue-sorted-by-header")


def test_the_browsers_back_button_walks_back_through_claims_to_the_same_queue(desk, page):
    """Regression (hostile review): each claim opened added several history entries with
    parts of the filter, so Back passed through half-filtered queues."""
    url, _ = desk
    page.goto(url + "/?claim_types=statistic")
    type_name(page, "Ana Reviewer")
    choose(page, "Sort", "newest first")
    page.get_by_role("button", name="Page 2", exact=True).click()
    settled(page)
    eventually(lambda: assert_equal(summary(page).split(" · ")[2], "page 2 of 2"))
    wanted = {"claim_types": ["statistic"], "sort": ["newest first"], "page": ["2"]}
    click_row(page, 0)
    page.get_by_role("heading", name=re.compile(r"^Claim \d+$")).wait_for()
    first = params(page)["claim"]
    page.get_by_text("in progress", exact=True).first.click()
    page.get_by_role("button", name="Save and next").click()
    eventually(lambda: assert_equal(params(page)["claim"] != first, True))
    settled(page)
    assert {k: v for k, v in params(page).items() if k != "claim"} == wanted
    page.go_back()  # the claim before
    eventually(lambda: assert_equal(params(page).get("claim"), first))
    settled(page)
    assert {k: v for k, v in params(page).items() if k != "claim"} == wanted
    page.go_back()  # the queue, as it was
    page.get_by_role("heading", name="Review queue").wait_for()
    eventually(lambda: assert_equal(params(page), wanted))
    eventually(
        lambda: assert_equal(summary(page).split(" · ")[1:3], ["newest first", "page 2 of 2"])
    )
    assert sidebar(page).get_by_text("Role: reviewer").is_visible()


def test_a_reviewer_disputes_a_claim_with_a_source(desk, page):
    url, engine = desk
    page.goto(url + "/claim?claim=1")
    type_name(page, "Ana Reviewer")
    page.get_by_text("disputed", exact=True).click()
    note = page.get_by_role("textbox", name="Note").first
    note.fill("BLS says 3.4% for May.")
    page.get_by_role("button", name="Save", exact=True).click()
    wait_for(lambda: _claim(engine, 1).status == "disputed")
    settled(page)
    note = page.get_by_role("textbox", name="Note").first
    eventually(lambda: assert_equal(note.input_value(), ""))  # emptied after the save
    page.get_by_role("textbox", name="URL").fill("https://www.bls.gov/lau/")
    page.get_by_role("textbox", name="Title").fill("BLS local unemployment")
    page.get_by_role("button", name="Add source").click()
    page.get_by_text("BLS local unemployment").first.wait_for()
    settled(page)
    history = grid_text(page.get_by_test_id("stDataFrame").last)
    assert "status changed" in history and "source added" in history
    assert "in_progress" not in page.get_by_test_id("stMain").inner_text()
    shot(page, "claim-disputed")
    claim = _claim(engine, 1)
    assert (claim.reviewed_by, claim.review_note) == ("Ana Reviewer", "BLS says 3.4% for May.")


def test_triage_gives_several_claims_a_status_at_once_and_refuses_stale_rows(desk, page):
    url, engine = desk
    page.goto(url + "/?claim_types=event")
    type_name(page, "Ana Reviewer")
    page.get_by_text("Select several (triage)").click()
    settled(page)
    ids = [int(i) for i in table_cells(page, "id")]
    for row in (0, 1, 2):
        click_row(page, row, column=None)  # the row's tick box
    eventually(lambda: assert_equal(page.get_by_text(re.compile(r"^3 selected")).count(), 1))
    choose_in(page, "Status", "disputed")
    page.get_by_role("textbox", name="Note (optional)").fill("Census says otherwise.")
    page.get_by_role("button", name="Set status of 3").click()
    wait_for(lambda: [_claim(engine, i).status for i in ids[:3]] == ["disputed"] * 3)
    settled(page)
    shot(page, "queue-triage")
    with Session(engine) as session:
        events = session.exec(select(ReviewEvent)).all()
    assert sorted(e.claim_id for e in events) == sorted(ids[:3])  # one entry per claim
    assert {(e.actor, e.to_value, e.note) for e in events} == {
        ("Ana Reviewer", "disputed", "Census says otherwise.")
    }

    # Someone else changes a claim the reviewer has on screen: the whole action is refused.
    for row in (3, 4):
        click_row(page, row, column=None)
    eventually(lambda: assert_equal(page.get_by_text(re.compile(r"^2 selected")).count(), 1))
    set_status(engine, ids[4], "checked", actor="Ben", expected_version=1)
    page.get_by_role("button", name="Dismiss 2").click()
    page.get_by_text("Not saved: someone else changed this first.").wait_for()
    assert not _claim(engine, ids[3]).dismissed and not _claim(engine, ids[4]).dismissed
    page.get_by_role("button", name="Dismiss 2").click()  # the page now shows the newer state
    wait_for(lambda: _claim(engine, ids[3]).dismissed and _claim(engine, ids[4]).dismissed)
    settled(page)
    eventually(lambda: assert_equal(str(ids[3]) in table_cells(page, "id"), False))  # hidden

    page.get_by_role("button", name="Dismissed", exact=True).click()
    settled(page)
    eventually(
        lambda: assert_equal(sorted(table_cells(page, "id")), sorted([str(ids[3]), str(ids[4])]))
    )
    assert page.get_by_test_id("stMetric").filter(has_text="dismissed").inner_text().endswith("2")
    click_row(page, 0, column=None)
    page.get_by_role("button", name="Restore 1").click()
    wait_for(lambda: not _claim(engine, ids[3]).dismissed or not _claim(engine, ids[4]).dismissed)


def test_ticks_stay_on_the_claims_ticked_and_a_new_page_starts_with_none(desk, page):
    """Regression (hostile review): ticks were kept by row position, so after a page
    change, or someone else's change above them, an action hit claims nobody ticked."""
    url, engine = desk
    page.goto(url + "/?claim_types=statistic")
    type_name(page, "Ana Reviewer")
    page.get_by_text("Select several (triage)").click()
    settled(page)
    first_page = [int(i) for i in table_cells(page, "id")]
    for row in (1, 2, 3):
        click_row(page, row, column=None)
    eventually(lambda: assert_equal(page.get_by_text(re.compile(r"^3 selected")).count(), 1))
    page.get_by_role("button", name="Page 2", exact=True).click()
    settled(page)
    eventually(lambda: assert_equal(page.get_by_text(re.compile(r"^3 selected")).count(), 0))
    assert page.get_by_role("button", name="Dismiss 3").count() == 0
    page.get_by_role("button", name="Page 1", exact=True).click()
    settled(page)
    for row in (1, 2, 3):
        click_row(page, row, column=None)
    eventually(lambda: assert_equal(page.get_by_text(re.compile(r"^3 selected")).count(), 1))
    # Someone dismisses the first claim of the page: the rows move up under the ticks.
    dismiss(engine, {first_page[0]: 1}, actor="Ben")
    page.get_by_role("button", name="Dismiss 3").click()
    wait_for(lambda: all(_claim(engine, i).dismissed for i in first_page[1:4]))
    settled(page)
    assert not any(_claim(engine, i).dismissed for i in first_page[4:8])


def test_an_import_is_queued_and_its_progress_shown_while_a_worker_extracts_it(desk, page):
    url, _ = desk
    page.goto(url + "/import")
    type_name(page, "Ana Reviewer")
    page.get_by_role("textbox", name="Title").fill("Council budget")
    page.get_by_role("textbox", name="Article text").fill(
        "The council said the new bridge cost $40 million, twice the original budget. "
        "Officials expect it to open in March 2027, a year later than planned."
    )
    page.get_by_role("button", name="Import").click()
    page.get_by_text("1 article(s) queued for extraction.").wait_for()
    # The page is free at once; the progress redraws itself until the worker is done.
    page.get_by_text("All extracted.").wait_for(timeout=60_000)
    shot(page, "import-progress")
    review = page.get_by_role("button", name=re.compile(r"^Review the \d+ claims of article 4$"))
    review.click()
    page.get_by_role("heading", name="Review queue").wait_for()
    eventually(lambda: assert_equal(params(page).get("article_id"), ["4"]))
    assert all("bridge" in t or "Officials" in t for t in table_cells(page, "claim"))


def test_claims_are_assigned_and_found_under_assigned_to_me(desk, page):
    url, engine = desk
    page.goto(url + "/claim?claim=7")
    type_name(page, "Émile Zola")
    page.get_by_role("button", name="Assign", exact=True).click()  # to oneself by default
    wait_for(lambda: _claim(engine, 7).assignee == "Émile Zola")
    settled(page)
    page.get_by_role("textbox", name="Assign to").fill("Bea Checker")
    page.get_by_role("button", name="Assign", exact=True).click()
    wait_for(lambda: _claim(engine, 7).assignee == "Bea Checker")
    page.goto(url + "/claim?claim=9")
    type_name(page, "ÉMILE ZOLA")  # the same person, however they type it
    page.get_by_role("button", name="Assign", exact=True).click()
    wait_for(lambda: _claim(engine, 9).assignee == "Émile Zola")
    history = grid_text(page.get_by_test_id("stDataFrame").last)
    assert "assigned" in history and "Émile Zola" in history
    page.get_by_role("button", name="← Back to queue").click()
    page.get_by_role("heading", name="Review queue").wait_for()
    page.get_by_role("button", name="Assigned to me").click()
    settled(page)
    eventually(lambda: assert_equal(table_cells(page, "id"), ["9"]))
    assert params(page)["assignee"] == ["Émile Zola"]
    shot(page, "queue-assigned-to-me")


def test_the_claim_page_shows_the_same_claim_elsewhere_and_prior_fact_checks(desk, page):
    from tracker.claimreview import FactCheckCreate, import_factchecks
    from tracker.models import ClaimMatch

    url, engine = desk
    set_status(engine, 2, "checked", actor="Bea", expected_version=1, note="Matches the census.")
    with Session(engine) as session:
        session.add(ClaimMatch(claim_id=1, other_id=2, score=0.81, state="suggested"))
        session.commit()
    import_factchecks(engine, [FactCheckCreate(
        claim_reviewed="The deficit figure for district 0 rose to 0.0% in 2000.",
        rating="Mostly false", organisation="PolitiFact",
        url="https://www.politifact.com/factchecks/2000/deficit/",
    )])  # fmt: skip
    page.goto(url + "/claim?claim=1")
    type_name(page, "Ana Reviewer")
    main = page.get_by_test_id("stMain")
    elsewhere = main.get_by_text(re.compile(r"^Claim 2 \[suggested")).inner_text()
    assert "checked" in elsewhere and "Report 1 (Gazette)" in elsewhere
    assert "Matches the census." in elsewhere
    assert main.get_by_text(re.compile("PolitiFact: Mostly false")).is_visible()
    link = main.get_by_role("link", name="Read the fact-check")
    assert link.get_attribute("href") == "https://www.politifact.com/factchecks/2000/deficit/"
    shot(page, "claim-elsewhere")
    page.get_by_role("button", name="Open claim 2").click()
    page.get_by_role("heading", name="Claim 2").wait_for()
    settled(page)
    assert sidebar(page).get_by_text("Role: reviewer").is_visible()


def test_the_article_shows_its_claims_in_place_and_a_click_opens_one(tmp_path, browser):
    """Hostile article text stays text; each highlight opens its claim in the same
    session (the typed name is still there)."""
    from tracker.ingest import add_article
    from tracker.models import ArticleCreate

    url = f"sqlite:///{tmp_path / 'desk.db'}"
    engine = get_engine(url)
    text = (
        "Officials said <script>window.pwned = 1</script> prices rose 9% in May. "
        '<img src=x onerror="window.pwned = 2"> **bold** [link](javascript:alert(1))\n\n'
        "The council said the bridge cost $40 million."
    )
    article, _ = add_article(engine, ArticleCreate(text=text, title="<b>Prices</b>"))
    with Session(engine) as session:
        for quote, status in (("prices rose 9% in May", "disputed"),
                              ("the bridge cost $40 million", "unreviewed")):  # fmt: skip
            start = text.index(quote)
            session.add(Claim(article_id=article.id, text=quote.capitalize() + ".", quote=quote,
                              quote_start=start, quote_end=start + len(quote), status=status,
                              checkworthiness=0.8))  # fmt: skip
        session.commit()
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(20_000)
    with dashboard(url, cwd=tmp_path) as address:
        page.goto(address + f"/articles?article={article.id}")
        type_name(page, "Ana Reviewer")
        marks = page.locator("mark")
        marks.first.wait_for()
        assert marks.all_inner_texts() == ["prices rose 9% in May", "the bridge cost $40 million"]
        body = page.locator("div.article").inner_text()
        assert "<script>window.pwned = 1</script>" in body and "**bold**" in body
        assert page.evaluate("window.pwned") is None
        assert page.locator("img[src=x]").count() == 0
        shot(page, "article-highlights")
        marks.nth(1).click()
        page.get_by_role("heading", name="Claim 2").wait_for()
        settled(page)
        assert sidebar(page).get_by_text("Role: reviewer").is_visible()
    context.close()


def test_overview_charts_the_filtered_claims_and_opens_a_top_claim(desk, page):
    url, engine = desk
    for claim_id in (1, 2, 3):
        set_status(engine, claim_id, "checked", actor="Bea", expected_version=1)
    page.goto(url + "/overview?search=deficit")
    page.get_by_role("heading", name="Overview").wait_for()
    settled(page)
    assert page.get_by_text(re.compile("search: deficit")).is_visible()
    charts = page.get_by_test_id("stVegaLiteChart")
    eventually(lambda: assert_equal(charts.count() >= 4, True))
    shot(page, "overview")
    last = page.get_by_test_id("stDataFrame").count() - 1
    grid = page.get_by_test_id("stDataFrame").nth(last)
    first = grid.locator("[data-testid='glide-cell-1-0']").inner_text()
    click_grid(page, {"x": 300, "y": HEADER + ROW / 2}, grid=last)
    page.get_by_role("heading", name=f"Claim {first}").wait_for()


@pytest.mark.parametrize(
    "desk", [{"TRACKER_ADMINS": "root", "TRACKER_TRUST_TYPED_NAMES": "true"}], indirect=True
)
def test_admins_see_everyone_and_others_are_told_how_roles_are_given(desk, page):
    url, engine = desk
    set_status(engine, 1, "checked", actor="Bea Checker", expected_version=1)
    page.goto(url + "/people")
    type_name(page, "Ana Reviewer")
    assert page.get_by_text("Managing roles needs the admin role.").is_visible()
    assert page.get_by_text(re.compile("TRACKER_ADMINS")).is_visible()
    type_name(page, "root")
    people = grid_text(page.get_by_test_id("stDataFrame").first)
    assert "Bea Checker" in people and "reviewer (default)" in people
    page.get_by_role("textbox", name="Name", exact=True).fill("bea checker")
    choose_in(page, "Role", "viewer")
    page.get_by_role("button", name="Set role").click()
    page.get_by_text("Role set: viewer.").wait_for()
    shot(page, "people")
    type_name(page, "BEA CHECKER")
    assert sidebar(page).get_by_text("Role: viewer").is_visible()


def _claim(engine, claim_id: int) -> Claim:
    with Session(engine) as session:
        return session.get(Claim, claim_id)


def _versions(engine) -> dict[int, int]:
    with Session(engine) as session:
        return {c.id: c.version for c in session.exec(select(Claim))}


__all__ = ["set_status", "time"]
