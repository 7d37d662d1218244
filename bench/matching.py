"""Matching one new claim against a million stored claims.

    python bench/matching.py [--claims 1000000] [--db PATH]

Uses the database of bench/dashboard_scale.py (seeding it when needed), then times
`find_matches` (full-text candidates + rapidfuzz scoring) for new claims, some of which
repeat stored ones. Target (issue 6): under 50 ms per claim.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard_scale import seed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "tracker-scale.db")
    args = parser.parse_args()
    seed(args.db, args.claims)

    from sqlmodel import Session, select

    from tracker.db import get_engine
    from tracker.matching import find_matches
    from tracker.models import Claim

    engine = get_engine(f"sqlite:///{args.db}")
    with Session(engine) as session:
        stored = session.exec(select(Claim).where(Claim.id % 50_000 == 7)).all()
        new = [
            Claim(id=None, article_id=-1, text=c.text, quote=c.quote, quote_start=0, quote_end=1,
                  checkworthiness=0.5)
            for c in stored[:10]
        ] + [
            Claim(id=None, article_id=-1, text=t, quote=t, quote_start=0, quote_end=1,
                  checkworthiness=0.5)
            for t in ("Officials said the new bridge cost 40 million dollars last spring.",
                      "The governor promised to cut property taxes by ten percent.")
        ]  # fmt: skip
        times, found = [], []
        for claim in new:
            started = time.perf_counter()
            matches = find_matches(session, claim, threshold=0.75)
            times.append(time.perf_counter() - started)
            found.append(len(matches))
    print(f"{args.claims:,} stored claims; {len(new)} new claims matched")
    print(f"  median {statistics.median(times) * 1000:6.1f} ms   worst {max(times) * 1000:6.1f} ms"
          "   (target < 50 ms)")  # fmt: skip
    print(f"  matches found per claim: {found}")


if __name__ == "__main__":
    main()
