"""End to end in a real browser: `streamlit run app.py` on loopback, driven with Playwright
through Debian's Chromium. Skips, with the reason, when Chromium or Playwright is missing
(`.ci/run` installs both). A screenshot is kept in test-artifacts/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tracker.db import get_engine
from tracker.ingest import add_article
from tracker.models import ArticleCreate, Claim, ReviewEvent, Source

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
TEXT = (
    "The mayor said unemployment fell to 3.1% in May, the lowest since 2001.\n\n"
    "Critics said the figure ignores people who stopped looking for work."
)

SECOND_QUOTE = "the figure ignores people who stopped looking for work"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dashboard(tmp_path) -> Iterator[tuple[str, str]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (.ci/run does)")
    database = f"sqlite:///{tmp_path / 'e2e.db'}"
    engine = get_engine(database)
    article, _ = add_article(
        engine, ArticleCreate(text=TEXT, title="Jobs report", outlet="Gazette")
    )
    with Session(engine) as session:
        session.add(
            Claim(
                article_id=article.id, text="Unemployment fell to 3.1% in May.",
                quote="unemployment fell to 3.1% in May", quote_start=15, quote_end=47,
                claimant="Mayor", claim_type="statistic", checkworthiness=0.9,
            )
        )  # fmt: skip
        session.add(
            Claim(
                article_id=article.id, text="Critics said the figure ignores discouraged workers.",
                quote=SECOND_QUOTE,
                quote_start=TEXT.index(SECOND_QUOTE),
                quote_end=TEXT.index(SECOND_QUOTE) + len(SECOND_QUOTE),
                claim_type="position", checkworthiness=0.5,
            )
        )  # fmt: skip
        session.commit()
    port = _free_port()
    env = {**os.environ, "TRACKER_DATABASE_URL": database}
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("streamlit did not start")
                time.sleep(0.3)
        yield url, database
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_reviewer_disputes_a_claim_with_a_source_in_the_browser(dashboard):
    from playwright.sync_api import expect, sync_playwright

    url, database = dashboard
    engine = get_engine(database)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(f"{url}/claim?claim=1")
        expect(page.get_by_text("Unemployment fell to 3.1% in May.").first).to_be_visible(
            timeout=30_000
        )
        name_box = page.get_by_role("textbox", name="Your name")
        name_box.fill("Ana Reviewer")
        name_box.press("Enter")
        expect(page.get_by_text("Role: reviewer")).to_be_visible(timeout=15_000)

        page.get_by_text("disputed", exact=True).click()
        page.get_by_role("textbox", name="Note").first.fill("BLS says 3.4% for May.")
        page.get_by_role("button", name="Save", exact=True).click()
        _wait_for(lambda: _status(engine) == "disputed")

        page.get_by_role("textbox", name="URL").fill("https://www.bls.gov/lau/")
        page.get_by_role("textbox", name="Title").fill("BLS local unemployment")
        page.get_by_role("button", name="Add source").click()
        _wait_for(lambda: _source_count(engine) == 1)
        expect(page.get_by_text("BLS local unemployment").first).to_be_visible(timeout=15_000)
        # Let the rerun finish before the picture: the page ends with the history table.
        expect(page.get_by_role("button", name="Remove")).to_be_visible(timeout=15_000)
        expect(page.get_by_text("No changes yet.")).to_have_count(0, timeout=15_000)
        page.wait_for_timeout(1000)

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "claim-disputed.png", full_page=True)

        # "Save and next" saves, then opens the next claim of the queue.
        page.get_by_text("in_progress", exact=True).click()
        page.get_by_role("button", name="Save and next").click()
        expect(page.get_by_text("Claim 2", exact=True)).to_be_visible(timeout=15_000)
        assert "claim=2" in page.url
        browser.close()

    with Session(engine) as session:
        events = session.exec(select(ReviewEvent).order_by(ReviewEvent.id)).all()
    assert [(e.actor, e.action, e.to_value) for e in events][:1] == [
        ("Ana Reviewer", "status", "disputed")
    ]
    assert events[0].note == "BLS says 3.4% for May."
    assert (ARTIFACTS / "claim-disputed.png").stat().st_size > 10_000


def _status(engine) -> str:
    with Session(engine) as session:
        return session.get(Claim, 1).status


def _source_count(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Source)).all())


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the database did not change in time")
        time.sleep(0.2)
