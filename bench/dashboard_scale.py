"""The review queue over a million claims: page render and filter-change times.

    python bench/dashboard_scale.py [--claims 1000000] [--db PATH]

Seeds a SQLite database (kept at --db for reruns; seeding is skipped when it already holds
the claims), then runs the dashboard's queue page with Streamlit's AppTest: the first
render, then a filter change (status), a full-text search, and a check-worthiness range;
and times the library queries behind them. Targets (issue 4): render under 1.5 s, a
filter change under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = [
    "unemployment", "inflation", "taxes", "bridge", "budget", "crime", "immigration",
    "vaccine", "border", "wages", "school", "hospital", "energy", "prices", "housing",
    "rent", "deficit", "tariff", "police", "election", "climate", "water", "transit",
]  # fmt: skip
OUTLETS = ["Gazette", "Wire", "Herald", "Tribune", "Courier", "Post", "Times", "Journal"]
CLAIMANTS = [None, None, "Mayor Jane Doe", "Governor Ann Lee", "Senator Bob Ray", "The ministry"]
STATUSES = ["unreviewed"] * 7 + ["in_progress", "checked", "disputed", "inconclusive"]
TYPES = ["statistic", "quote_attribution", "event", "prediction", "causal", "position", "other"]


def template_text(rng: random.Random) -> str:
    """A claim over a 23-word vocabulary: every word is in about a sixth of all claims."""
    words = rng.sample(WORDS, 4)
    return f"The {words[0]} {words[1]} rose {rng.randint(1, 99)}% in {words[2]} {words[3]}."


def seed(
    path: Path, claims: int, make_text: Callable[[random.Random], str] = template_text
) -> None:
    from tracker.db import get_engine

    get_engine(f"sqlite:///{path}")  # creates the schema (with the FTS triggers)
    conn = sqlite3.connect(path)
    if conn.execute("SELECT count(*) FROM claim").fetchone()[0] >= claims:
        return
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None)  # stored as the tracker stores it: UTC, naive
    articles = max(1, claims // 50)
    started = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO article (id, title, outlet, text, content_hash, imported_at,"
            " published_at, extraction_state, claims_dropped) VALUES (?,?,?,?,?,?,?,?,0)",
            (
                (
                    i, f"Article {i}", OUTLETS[i % len(OUTLETS)], f"Text of article {i}.",
                    f"{i:064x}", now.isoformat(" "), (now - timedelta(days=i % 700)).isoformat(" "),
                    "extracted",
                )
                for i in range(1, articles + 1)
            ),
        )  # fmt: skip

        def rows():
            for i in range(1, claims + 1):
                text = make_text(rng)
                yield (
                    i,
                    1 + i % articles,
                    text,
                    text,
                    0,
                    len(text),
                    rng.choice(CLAIMANTS),
                    rng.choice(TYPES),
                    round(rng.random(), 4),
                    rng.choice(STATUSES),
                    now.isoformat(" "),
                    now.isoformat(" "),
                    1,
                )

        conn.executemany(
            "INSERT INTO claim (id, article_id, text, quote, quote_start, quote_end, claimant,"
            " claim_type, checkworthiness, status, created_at, updated_at, version)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows(),
        )
        # Stored claims have been compared with each other (what match_pending records).
        conn.execute("UPDATE claim SET matched_at = created_at")
    conn.execute("ANALYZE")
    conn.close()
    print(
        f"seeded {claims:,} claims in {articles:,} articles: {time.perf_counter() - started:.0f} s"
    )


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "tracker-scale.db")
    args = parser.parse_args()
    seed(args.db, args.claims)
    os.environ["TRACKER_DATABASE_URL"] = f"sqlite:///{args.db}"

    from streamlit.testing.v1 import AppTest

    from tracker.db import get_engine
    from tracker.queue import QueueFilter, next_claim, queue_page, status_counts

    engine = get_engine(os.environ["TRACKER_DATABASE_URL"])
    print(f"{args.claims:,} claims, SQLite at {args.db}")
    for label, flt in [
        ("queue page, default", QueueFilter()),
        ("queue page, status=disputed", QueueFilter(statuses=("disputed",))),
        ("queue page, search 'inflation'", QueueFilter(search="inflation")),
        ("queue page, score 0.4-0.6", QueueFilter(min_score=0.4, max_score=0.6)),
    ]:
        seconds = timed(lambda flt=flt: (queue_page(engine, flt), status_counts(engine, flt)))
        print(f"  library: {label:34} {seconds * 1000:7.0f} ms")
    unreviewed = QueueFilter(statuses=("unreviewed",))
    for label, flt in [("all", QueueFilter()), ("unreviewed", unreviewed)]:
        for sort in ("checkworthiness", "article"):
            times = [
                timed(lambda c=c, f=flt, s=sort: next_claim(engine, f, c, s)) for c in (7, 500_000)
            ]
            print(f"  library: next claim, {label:10} by {sort:15} (near the top / deep) "
                  f"{times[0] * 1000:5.0f} / {times[1] * 1000:5.0f} ms")  # fmt: skip

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    first = timed(app.run)
    assert not app.exception, app.exception
    again = timed(app.run)
    print(f"  dashboard: first render            {first:6.2f} s   (target < 1.5 s)")
    print(f"  dashboard: rerun                   {again:6.2f} s")
    shown = [t.value for t in app.text if "claims match" in t.value]
    print(f"  dashboard shows: {shown}")
    status = timed(lambda: app.multiselect[0].set_value(["disputed"]).run())
    assert not app.exception, app.exception
    print(f"  dashboard shows: {[t.value for t in app.text if 'claims match' in t.value]}")
    print(f"  dashboard: filter status=disputed  {status:6.2f} s   (target < 0.5 s)")
    search = timed(lambda: app.text_input[1].input("inflation").run())
    print(f"  dashboard: search 'inflation'      {search:6.2f} s   (target < 0.5 s)")
    score = timed(lambda: app.slider[0].set_value((0.4, 0.6)).run())
    print(f"  dashboard: score range 0.4-0.6     {score:6.2f} s   (target < 0.5 s)")


if __name__ == "__main__":
    main()
