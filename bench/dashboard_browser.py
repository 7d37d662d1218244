"""The reviewer's loop in a real browser over a large queue: how long a person waits.

    python bench/dashboard_browser.py [--claims 100000] [--postgres URL] [--rounds 15]

Seeds SQLite with --claims claims (bench/dashboard_scale.py's seeding; copied into an
emptied PostgreSQL database with --postgres), starts `streamlit run app.py` on loopback
and drives Debian's Chromium through Playwright, timing from the click or key press until
the page shows the result:

  open a claim   click a row of the queue  -> the claim's heading is shown
  save and next  pick a status, Save and next -> the next claim's heading is shown
  filter change  type a search word, Enter -> the queue's count line shows it applied
  back to queue  Back to queue             -> the queue shows the claim's page

Prints the median and the slowest of --rounds for each. Target (issue 11): each median
at most 1 s on this machine.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard_scale import WORDS, seed  # noqa: E402
from bench.matching import copy_to_postgres  # noqa: E402
from tests.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    click_row,
    dashboard,
    settled,
    sidebar,
    type_name,
)


def timed(action, done) -> float:
    started = time.perf_counter()
    action()
    done()
    return time.perf_counter() - started


def run(url: str, rounds: int, label: str) -> None:
    from playwright.sync_api import sync_playwright

    with dashboard(url, cwd=Path(tempfile.gettempdir())) as address, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(address + "/")
        type_name(page, "Bench Reviewer")
        times: dict[str, list[float]] = {
            "open a claim": [],
            "save and next": [],
            "filter change": [],
            "back to queue": [],
        }
        heading = re.compile(r"^Claim \d+$")
        for n in range(rounds):
            word = WORDS[n % len(WORDS)]
            box = sidebar(page).get_by_role("textbox", name="Search claims and quotes")
            box.fill(word)
            counted = page.get_by_text(re.compile(r"^\d+ claims match"))
            before = counted.inner_text()
            times["filter change"].append(
                timed(
                    lambda b=box: b.press("Enter"),
                    lambda c=counted, b=before: _until(lambda: c.inner_text() != b),
                )
            )
            settled(page)
            times["open a claim"].append(
                timed(
                    lambda n=n: click_row(page, n % 10),
                    lambda: page.get_by_role("heading", name=heading).wait_for(),
                )
            )
            settled(page)
            current = page.get_by_role("heading", name=heading).inner_text()
            page.get_by_text("in progress", exact=True).first.click()
            times["save and next"].append(
                timed(
                    lambda: page.get_by_role("button", name="Save and next").click(),
                    lambda c=current: _until(lambda: _heading(page) not in (c, None)),
                )
            )
            settled(page)
            times["back to queue"].append(
                timed(
                    lambda: page.get_by_role("button", name="← Back to queue").click(),
                    lambda: page.get_by_role("heading", name="Review queue").wait_for(),
                )
            )
            settled(page)
        browser.close()
    print(f"{label}:")
    for action, values in times.items():
        print(
            f"  {action:14} median {statistics.median(values):5.2f} s, "
            f"slowest {max(values):5.2f} s  ({len(values)} rounds)"
        )


def _heading(page) -> str | None:
    found = page.get_by_role("heading", name=re.compile(r"^Claim \d+$"))
    return found.inner_text() if found.count() == 1 else None


def _until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not change")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--postgres", help="an (emptied) PostgreSQL database URL to use too")
    parser.add_argument(
        "--db", type=Path, default=Path(tempfile.gettempdir()) / "tracker-browser-bench.db"
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("needs Debian's chromium (apt-get install chromium)")
    seed(args.db, args.claims)
    run(f"sqlite:///{args.db}", args.rounds, f"SQLite, {args.claims:,} claims")
    if args.postgres:
        copy_to_postgres(args.db, args.postgres, args.claims)
        run(args.postgres, args.rounds, f"PostgreSQL, {args.claims:,} claims")


if __name__ == "__main__":
    main()
