"""Driving the dashboard in a real browser: `streamlit run app.py` on loopback, Debian's
Chromium through Playwright, and a desk's worth of claims to work on.

Used by tests/test_browser*.py and bench/dashboard_browser.py. Skips, with the reason,
when Chromium or Playwright is missing (`.ci/run` installs both).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session

from tracker.dashboard.queue import COLUMN_WIDTHS
from tracker.ingest import add_article
from tracker.models import ArticleCreate, Claim

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

TOPICS = ["deficit", "jobs", "taxes", "schools", "bridges", "health"]
OUTLETS = ["Gazette", "Wire", "Herald"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_desk(engine: Engine, per_article: int = 40, articles: int = 3) -> list[int]:
    """Articles whose sentences are the claims' quotes: six topics, three outlets, scores
    spread so that the queue has several pages (50 a page). Returns the claim ids."""
    ids = []
    for a in range(articles):
        sentences = []
        for i in range(per_article):
            n = a * per_article + i
            topic = TOPICS[n % len(TOPICS)]
            sentences.append(
                f"The {topic} figure for district {n} rose to {n % 9}.{n % 7}% in {2000 + n % 25}."
            )
        text = "\n\n".join(sentences)
        article, _ = add_article(
            engine,
            ArticleCreate(text=text, title=f"Report {a + 1}", outlet=OUTLETS[a % len(OUTLETS)]),
        )
        with Session(engine) as session:
            offset = 0
            for i, sentence in enumerate(sentences):
                n = a * per_article + i
                claim = Claim(
                    article_id=article.id,
                    text=sentence,
                    quote=sentence,
                    quote_start=offset,
                    quote_end=offset + len(sentence),
                    claim_type="statistic" if n % 3 else "event",
                    claimant=f"Official {n % 4}" if n % 2 else None,
                    checkworthiness=round(0.99 - (n * 37 % 100) / 101, 3),
                )
                session.add(claim)
                session.flush()
                ids.append(claim.id)
                offset += len(sentence) + 2
            session.commit()
    return ids


@contextmanager
def dashboard(
    database_url: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    port: int | None = None,
    args: list[str] | None = None,
) -> Iterator[str]:
    """`streamlit run app.py` on a (free) loopback port; yields its URL."""
    port = port or free_port()
    environment = {**os.environ, "TRACKER_DATABASE_URL": database_url, **(env or {})}
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", *(args or []),
    ]  # fmt: skip
    log = open(Path(cwd or ROOT / "test-artifacts") / f"streamlit-{port}.log", "w")  # noqa: SIM115
    server = subprocess.Popen(command, env=environment, cwd=cwd or ROOT, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("streamlit did not start; see " + log.name) from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_for(condition, timeout: float = 20.0, what: str = "the database to change") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


# --- How a person uses the page ------------------------------------------------------


def settled(page) -> None:
    """Wait until the app has finished its rerun."""
    page.wait_for_timeout(150)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')"
        "?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=30_000,
    )


def eventually(check, timeout: float = 15.0):
    """Retry an assertion until it holds (the page redraws a moment after a rerun, and
    may show an empty table meanwhile: a check indexing its rows retries too)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, IndexError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def sidebar(page):
    return page.get_by_test_id("stSidebar")


def type_name(page, name: str) -> None:
    box = sidebar(page).get_by_role("textbox", name="Your name")
    box.fill(name)
    box.press("Enter")
    sidebar(page).get_by_text("Role: ").wait_for()
    settled(page)


def search(page, words: str) -> None:
    box = sidebar(page).get_by_role("textbox", name="Search claims and quotes")
    box.fill(words)
    box.press("Enter")
    settled(page)


def choose(page, label: str, option: str) -> None:
    """Pick an option of a sidebar select box or multiselect, as with the mouse."""
    settled(page)
    wanted = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):  # a rerun that lands right after the click closes the list again
        sidebar(page).get_by_role("combobox", name=label).click()
        try:
            wanted.wait_for(timeout=3_000)
            break
        except Exception:
            settled(page)
    wanted.click()
    page.keyboard.press("Escape")
    settled(page)


def changed(found: list[str], before: list[str]) -> list[str]:
    assert found and found != before, "the table has not been redrawn yet"
    return found


def choose_in(page, label: str, option: str) -> None:
    """Pick an option of a select box in the page (not the sidebar)."""
    settled(page)
    page.get_by_test_id("stMain").get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    settled(page)


def assert_equal(found, wanted) -> None:
    assert found == wanted, f"{found!r} != {wanted!r}"


def summary(page) -> str:
    """The queue's "N claims match · sort · page i of n" line."""
    return page.get_by_text(re.compile(r"^\d+ claims match")).inner_text()


def matching(page) -> int:
    """The queue's "N claims match" count."""
    text = page.get_by_text(re.compile(r"^\d+ claims match")).inner_text()
    return int(text.split()[0])


ROW_MARKER, HEADER, ROW = 32, 36, 35  # the grid's geometry, in pixels


def table_cells(page, column: str, grid: int = 0) -> list[str]:
    """A column of the queue's table, read from the grid's accessible cells (the grid
    itself is a canvas)."""
    index = 1 + list(COLUMN_WIDTHS).index(column)
    table = page.get_by_test_id("stDataFrame").nth(grid)
    table.locator("[data-testid=glide-cell-1-0]").wait_for(state="attached")
    return table.locator(f"[data-testid^='glide-cell-{index}-']").all_inner_texts()


def grid_text(grid) -> str:
    """Everything a grid (a canvas) shows, from its accessible cells."""
    grid.locator("[data-testid^='glide-cell-']").first.wait_for(state="attached")
    return "\n".join(grid.locator("[data-testid^='glide-cell-']").all_inner_texts())


def grid_point(column: str | None, row: int | None) -> dict[str, float]:
    """Where a cell (row None: the header; column None: the row's tick box) of the
    queue's table is drawn."""
    if column is None:
        return {"x": ROW_MARKER / 2, "y": HEADER + ROW * row + ROW / 2}
    names = list(COLUMN_WIDTHS)
    left = ROW_MARKER + sum(COLUMN_WIDTHS[name] for name in names[: names.index(column)])
    top = HEADER / 2 if row is None else HEADER + ROW * row + ROW / 2
    return {"x": left + min(COLUMN_WIDTHS[column] / 2, 40), "y": top}


SCROLL_TO = """(el, y) => {
  let box = el.parentElement;
  while (box && !(box.scrollHeight > box.clientHeight
                  && /auto|scroll/.test(getComputedStyle(box).overflowY))) box = box.parentElement;
  const top = el.getBoundingClientRect().top + y - window.innerHeight / 2;
  (box || document.scrollingElement).scrollBy(0, top);
}"""


def click_grid(page, point: dict[str, float], grid: int = 0) -> None:
    """Click a point of a grid (a canvas) with the mouse, scrolled to the middle of the
    window first so that no header covers it, once the page has stopped moving (charts
    drawn above it can push it down)."""
    canvas = page.get_by_test_id("stDataFrame").nth(grid).locator("canvas").first
    canvas.evaluate(SCROLL_TO, point["y"])
    box = None
    for _ in range(50):
        page.wait_for_timeout(100)
        now = canvas.bounding_box()
        if now == box:
            break
        box = now
    x, y = box["x"] + point["x"], box["y"] + point["y"]
    page.mouse.move(x - 5, y)  # a hand moves onto the row before it clicks;
    page.mouse.move(x, y, steps=3)  # the grid takes a click only where it saw the pointer
    page.wait_for_timeout(100)
    page.mouse.click(x, y)
    settled(page)


def click_row(page, n: int, column: str | None = "claim") -> None:
    """Click the n-th row of the queue's table, as a person does (on its claim text)."""
    click_grid(page, grid_point(column, n))


def click_header(page, column: str) -> None:
    click_grid(page, grid_point(column, None))


def nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.get_by_role(
        "heading", name=title if title != "Review queue" else "Review queue"
    ).wait_for()
    settled(page)


def shot(page, name: str) -> None:
    """A picture of the whole page (Streamlit scrolls inside the app, so the window is
    made as tall as the page for a moment)."""
    settled(page)
    page.wait_for_timeout(300)
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('*')]"
        ".filter(e => e.scrollHeight > e.clientHeight + 5)"
        ".map(e => e.scrollHeight), window.innerHeight)"
    )
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(400)
    page.screenshot(path=ARTIFACTS / f"{name}.png")
    page.set_viewport_size(size)


def location(page) -> str:
    """The address bar now (page.url can lag behind Streamlit's history.replaceState)."""
    return page.evaluate("location.href")


def params(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location(page)).query)
