"""One `tracker watch` pass over many feeds served from a loopback web server.

    python bench/watch_pass.py [--feeds 20] [--entries 10] [--hosts 4] [--interval 0.1]
                               [--database-url URL]

FEEDS feeds of ENTRIES new articles each (distinct pages), spread over HOSTS loopback
servers (one port each: each is a "site" with its own turn), read with the
offline extractor; one in ten pages repeats a loaded fact-check's claim. Prints the first
pass (fetch, read, extract, alert) with its requests and the time spent waiting for host
turns (requests x INTERVAL / HOSTS: the floor politeness sets), then a second pass
where every feed answers 304, then a third with one new entry per feed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import make_settings  # noqa: E402
from tests.test_monitor import BUDGET, FACT_CHECK, RSS_TYPE  # noqa: E402
from tests.webserver import Route, WebServer, article_page, rss  # noqa: E402
from tracker.claimreview import import_factchecks  # noqa: E402
from tracker.db import get_engine  # noqa: E402
from tracker.feeds import add_feed  # noqa: E402
from tracker.monitor import run_pass  # noqa: E402

TOPICS = ["harbour", "rail", "schools", "hospital", "budget", "housing", "energy", "water"]


def paragraphs(feed: int, entry: int) -> list[str]:
    if entry % 10 == 3:
        return [f"Report {feed}-{entry}.", *BUDGET]
    topic = TOPICS[(feed + entry) % len(TOPICS)]
    return [
        f"The {topic} office said spending rose by {feed + entry} percent in {2000 + entry}.",
        f"Officials in district {feed} said {entry * 3} projects were delayed last year.",
        f"A spokesperson said the {topic} plan would cost {feed * 7 + entry} million euros.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        sites = [stack.enter_context(WebServer()) for _ in range(args.hosts)]
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = get_engine(url)
        import_factchecks(engine, [FACT_CHECK])
        items: dict[int, list] = {}
        for f in range(args.feeds):
            web = sites[f % args.hosts]
            host = web.base
            items[f] = []
            for e in range(args.entries):
                path = f"/f{f}/e{e}"
                web.route(path, Route(article_page(f"Story {f}-{e}", paragraphs(f, e))))
                items[f].append((f"{f}-{e}", host + path, f"Story {f}-{e}"))
            web.route(f"/f{f}/rss", Route(rss(items[f]), content_type=RSS_TYPE, etag=f'"{f}"'))
            add_feed(engine, f"{host}/f{f}/rss", f"Outlet {f}")
        settings = make_settings(
            url, openai_api_key=None, openai_base_url=None, extractor="offline",
            host_interval=args.interval, fetch_timeout=10.0,
        )  # fmt: skip
        robots: dict = {}

        def timed(label: str) -> None:
            started = time.monotonic()
            report = run_pass(engine, settings, robots=robots)
            seconds = time.monotonic() - started
            floor = report.requests * args.interval / args.hosts
            print(
                f"{label}: {seconds:.2f} s, {report.requests} requests (politeness floor "
                f"{floor:.2f} s), {report.pages_read} pages read, {report.extracted} "
                f"extracted, {report.alerts} alerts, {report.count('unchanged')} feeds unchanged"
            )

        print(f"{args.feeds} feeds x {args.entries} entries on {args.hosts} hosts, "
              f"{args.interval} s between requests to a host; {engine.dialect.name}")  # fmt: skip
        timed("first pass")
        timed("second pass")
        for f in range(args.feeds):
            web, path = sites[f % args.hosts], f"/f{f}/new"
            web.route(path, Route(article_page(f"New {f}", paragraphs(f, 99))))
            items[f].insert(0, (f"{f}-new", web.base + path, f"New {f}"))
            web.route(f"/f{f}/rss", Route(rss(items[f]), content_type=RSS_TYPE, etag=f'"{f}b"'))
        timed("third pass")


if __name__ == "__main__":
    main()
