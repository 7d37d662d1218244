"""Matching one new claim against a million stored claims.

    python bench/matching.py [--claims 1000000] [--vocabulary corpus|template] [--db PATH]
                             [--postgres postgresql://user:password@host/database]

Seeds a SQLite database of stored claims (kept at --db for reruns), then times
`find_matches` (full-text candidates + reranking) for new claims: 20 that repeat stored
claims, 20 rewordings of stored claims (a word in ten dropped, word order shuffled), 20
misspellings (two of the longer words each lose a letter: words no stored claim holds)
and 20 that repeat none.

Vocabulary: `corpus` (default) gives each stored claim the length of a sentence of the
State of the Union corpus (../shared/corpora) and words drawn at their corpus frequency,
so word frequencies are those of real political text (with a vocabulary of a few
thousand words, far fewer than a million news claims would hold, which keeps it hard).
`template` is the dashboard benchmark's 23-word vocabulary, where every word is in about a
sixth of all claims: a worst case for any full-text index.
With --postgres, the same claims are copied into that (emptied) PostgreSQL database and
matched there. Target (issue 6): under 50 ms per claim.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard_scale import seed, template_text  # noqa: E402


class CorpusText:
    """Claim texts with the sentence lengths and word frequencies of a real corpus (words
    drawn independently: no two claims are near-copies unless drawn so)."""

    def __init__(self, folder: Path) -> None:
        text = " ".join(path.read_text() for path in sorted(folder.glob("*.txt")))
        self.sentences = [
            words
            for sentence in re.split(r"(?<=[.!?])\s+", text)
            if 8 <= len(words := sentence.split()) <= 40
        ]
        self.tokens = [word for sentence in self.sentences for word in sentence]

    def __call__(self, rng: random.Random) -> str:
        length = len(rng.choice(self.sentences))
        return " ".join(rng.choice(self.tokens) for _ in range(length))


def reworded(text: str, rng: random.Random) -> str:
    """`text` with about one word in ten dropped and the words shuffled."""
    words = [w for w in text.split() if rng.random() >= 0.1] or text.split()
    rng.shuffle(words)
    return " ".join(words)


def copy_to_postgres(db: Path, url: str, claims: int):
    """The SQLite bench database's articles and claims, copied into PostgreSQL at `url`."""
    import sqlite3

    import sqlalchemy as sa

    from tracker.db import get_engine

    engine = get_engine(url)
    with engine.connect() as conn:
        if conn.execute(sa.text("SELECT count(*) FROM claim")).scalar_one() == claims:
            return engine
    source = sqlite3.connect(db)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE article, claim CASCADE"))
        cursor = conn.connection.driver_connection.cursor()
        for table in ("article", "claim"):
            columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            names = ", ".join(columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {names} FROM {table}"):
                    copy.write_row(row)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE claim"))
    print(f"copied {claims:,} claims into PostgreSQL: {time.perf_counter() - started:.0f} s")
    return engine


def misspelt(text: str, rng: random.Random) -> str:
    """`text` with two of its words of six letters or more each missing one letter."""
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6]
    for i in rng.sample(long, min(2, len(long))):
        cut = rng.randrange(1, len(words[i]) - 1)
        words[i] = words[i][:cut] + words[i][cut + 1 :]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--vocabulary", choices=["corpus", "template"], default="corpus")
    parser.add_argument(
        "--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "state-of-the-union"
    )
    parser.add_argument("--db", type=Path)
    parser.add_argument("--postgres", help="a PostgreSQL URL to copy the claims into and use")
    parser.add_argument(
        "--live", action="store_true",
        help="search as the SQLite matcher process does, through its in-memory word index "
        "(LiveIndex), each new claim given the next id",
    )  # fmt: skip
    args = parser.parse_args()
    if args.vocabulary == "corpus":
        if not args.corpus.is_dir():
            sys.exit(f"corpus folder not found: {args.corpus} (or use --vocabulary template)")
        make_text = CorpusText(args.corpus)
    else:
        make_text = template_text
    db = args.db or Path(tempfile.gettempdir()) / f"tracker-matching-{args.vocabulary}.db"
    seed(db, args.claims, make_text)

    from sqlmodel import Session, select

    from tracker.db import get_engine
    from tracker.matching import LiveIndex, find_matches
    from tracker.models import Claim

    live = LiveIndex() if args.live else None
    next_id = None

    def new_claim(text: str) -> Claim:
        return Claim(id=next_id, article_id=-1, text=text, quote=text, quote_start=0,
                     quote_end=1, checkworthiness=0.5)  # fmt: skip

    engine = get_engine(f"sqlite:///{db}")
    if args.postgres:
        engine = copy_to_postgres(db, args.postgres, args.claims)
    rng = random.Random(2026)
    with Session(engine) as session:
        if live is not None:
            live.catch_up(session)
            next_id = live.through + 1
        step = max(1, args.claims // 20)
        repeats = session.exec(select(Claim).where(Claim.id % step == 7).limit(20)).all()
        new = (
            [new_claim(c.text) for c in repeats]
            + [new_claim(reworded(c.text, rng)) for c in repeats]
            + [new_claim(misspelt(c.text, rng)) for c in repeats]
            + [new_claim(make_text(rng)) for _ in range(20)]
        )
        find_matches(session, new[0], threshold=0.75, live=live)  # warm the caches once
        times, found = [], []
        for claim in new:
            started = time.perf_counter()
            matches = find_matches(session, claim, threshold=0.75, live=live)
            times.append(time.perf_counter() - started)
            found.append(len(matches))
    how = f"{engine.dialect.name}{', live index' if live else ''}"
    print(f"{args.claims:,} stored claims ({args.vocabulary} vocabulary, {how}); "
          f"{len(new)} new claims")  # fmt: skip
    groups = {"repeats": slice(0, 20), "reworded": slice(20, 40), "misspelt": slice(40, 60),
              "no repeat": slice(60, 80)}  # fmt: skip
    for label, part in [*groups.items(), ("all", slice(0, 80))]:
        ms = [t * 1000 for t in times[part]]
        print(f"  {label:10} median {statistics.median(ms):6.1f} ms   "
              f"worst {max(ms):6.1f} ms   (target < 50 ms)")  # fmt: skip
    for label, part in groups.items():
        print(f"  matches found, {label}: {found[part]}")


if __name__ == "__main__":
    main()
