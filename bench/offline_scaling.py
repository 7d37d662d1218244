"""The offline extractor's time and peak memory against article size, up to the 10 MB limit.

    python bench/offline_scaling.py [--sizes 50000,200000,1000000,...] [--one-line]

Each size runs in a fresh process (so peak RSS is that size's own). The article is the
State of the Union corpus (../shared/corpora) concatenated, cut to the size; copies of the
corpus repeat its sentences, which the extractor merges, as it does any repeated sentence.
Issue 12 asked for linear (or n log n) time at any size up to TRACKER_MAX_ARTICLE_BYTES.
`--one-line`: the same texts with every line break and full stop taken out, one paragraph
of one "sentence" (the second review's 10 MB one-line file).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "state-of-the-union"
SIZES = [50_000, 200_000, 400_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000]


def article(size: int) -> str:
    files = sorted(CORPUS.glob("*.txt"))
    if not files:
        sys.exit(f"no corpus at {CORPUS}: this benchmark needs the State of the Union texts")
    corpus = "\n\n".join(p.read_text(encoding="utf-8") for p in files)
    text = corpus * (size // len(corpus.encode()) + 1)
    return text.encode()[:size].decode("utf-8", "ignore")


def one(size: int, one_line: bool = False) -> None:
    from tracker.offline import extract_offline, load_model

    text = article(size)
    if one_line:
        text = " ".join(text.replace(".", " ").split())
    load_model()
    started = time.perf_counter()
    result = extract_offline(text)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bytes": size, "seconds": seconds, "claims": len(result.claims),
                      "peak_mib": peak}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--one-line", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.one_line)
        return
    print(f"{'size':>10} {'seconds':>8} {'s per MB':>9} {'claims':>8} {'peak RSS':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), *(["--one-line"] * args.one_line)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{size / 1e6:>8.2f}MB {row['seconds']:>8.1f} {row['seconds'] / (size / 1e6):>9.1f} "
            f"{row['claims']:>8,} {row['peak_mib']:>6.0f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
