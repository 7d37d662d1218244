"""The offline check-worthiness model: file size, load time, scoring speed on one core.

    python bench/offline_model.py [--sentences 20000]

Targets (issue 5): under 10 MB, loads in under a second, at least 1,000 sentences a
second on one core. Sentences come from the State of the Union corpus when it is beside
the project (../shared/corpora), else from the sample article, repeated.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sentences(n: int) -> list[str]:
    from tracker.offline import sentence_spans

    corpus = ROOT.parent / "shared" / "corpora" / "state-of-the-union"
    files = sorted(corpus.glob("*.txt")) or [
        ROOT / "data" / "articles" / "nato-peacekeepers-lavrov.txt"
    ]
    found: list[str] = []
    while len(found) < n:
        for path in files:
            text = path.read_text(encoding="utf-8")
            found += [text[a:b] for a, b in sentence_spans(text)]
            if len(found) >= n:
                break
    return found[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    from tracker.offline import CheckworthinessModel, model_path

    path = model_path()
    started = time.perf_counter()
    model = CheckworthinessModel(path)
    load = time.perf_counter() - started
    batch = sentences(args.sentences)
    started = time.perf_counter()
    model.checkworthiness(batch)
    rate = len(batch) / (time.perf_counter() - started)
    print(f"model file        {path.stat().st_size / 1e6:6.2f} MB   (target < 10 MB)")
    print(f"load              {load:6.3f} s    (target < 1 s)")
    print(f"scoring, 1 core   {rate:8,.0f} sentences/s over {len(batch):,} (target >= 1,000)")


if __name__ == "__main__":
    main()
