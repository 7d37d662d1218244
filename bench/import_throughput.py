"""Import throughput of the real `tracker import` CLI against the loopback model server.

    python bench/import_throughput.py [--n 200] [--latency 0.5 0.2 0] [--concurrency 16]
                                      [--claims 5] [--stored 100000] [--reimport 1000]

Articles are built from words drawn at their frequency in the State of the Union corpus
(../shared/corpora; a fixed synthetic vocabulary when it is missing), and the model answers
each with `--claims` claims, as real models do (one claim per answer hid most of the cost
of grounding, checking and matching). The database already holds `--stored` claims of the
same vocabulary, so that matching new claims searches a realistic index.

Prints, for N articles at model latency L and concurrency C: the whole command's wall time
against the ideal N·L/C; the CPU spent per article beyond start-up, in all and in the
import process alone (its matcher process compares new claims with stored ones on the
other core); the same CPU as the slope between N and 3N articles, which leaves out what
a run pays once; then a re-import of `--reimport` stored articles (time, model calls). Targets
(issue 13): the whole command within 1.3x of N·L/C at L=500 ms and 1.5x at L=200 ms, C=16;
per-article CPU at most 15 ms for ~5 claims with 100,000 claims stored.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard_scale import seed  # noqa: E402
from tests.fakellm import FakeLLM, sentence_claims  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "state-of-the-union"


def vocabulary() -> list[str]:
    """Words at their frequency in real political text (repeats kept: draw uniformly)."""
    if CORPUS.is_dir():
        text = " ".join(p.read_text() for p in sorted(CORPUS.glob("*.txt")))
        return [w for w in text.split() if w.isalpha()]
    rng = random.Random(3)  # Zipf-like: word k appears about 1/k as often as word 1
    words = [f"w{k}{'abcdefgh'[k % 8]}" for k in range(1, 5001)]
    return [w for k, w in enumerate(words, 1) for _ in range(max(1, 2000 // k))] + rng.sample(
        words, 100
    )


def sentence(rng: random.Random, words: list[str]) -> str:
    body = " ".join(rng.choice(words) for _ in range(rng.randint(9, 22)))
    figure, year = rng.randint(2, 90), rng.randint(1990, 2025)
    return f"{body[0].upper()}{body[1:]} rose {figure} percent in {year}."


def write_articles(folder: Path, n: int, words: list[str], seed_: int = 1) -> None:
    rng = random.Random(seed_)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n\n".join(" ".join(sentence(rng, words) for _ in range(3)) for _ in range(4))
        (folder / f"article-{i:05d}.txt").write_text(body, encoding="utf-8")


# `tracker` as the script runs it, telling at exit the CPU its own process spent (the
# matcher process it starts is counted in the total, not here).
_TRACKER = (
    "import atexit, resource, sys\n"
    "def said():\n"
    "    own = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    sys.stderr.write(f'\\nOWN-CPU {own.ru_utime + own.ru_stime}\\n')\n"
    "atexit.register(said)\n"
    "from tracker.cli import main\n"
    "sys.argv[0] = 'tracker'\n"
    "main()\n"
)


# The floor: a process that only imports the SDK and sends the same articles to the same
# server, C at a time (no database, no checks, no matching): what any command built on the
# openai SDK pays on this machine before doing anything of its own.
_BARE_SDK = """
import asyncio, pathlib, sys
import openai

async def main(folder, c):
    client, gate = openai.AsyncOpenAI(), asyncio.Semaphore(c)
    async def one(path):
        async with gate:
            text = path.read_text(encoding="utf-8")
            await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": f"<<<\\n{text}\\n>>>"}])
    await asyncio.gather(*(one(p) for p in sorted(pathlib.Path(folder).iterdir())))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def bare_sdk(folder: Path, concurrency: int, base_url: str) -> float:
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench-not-a-key"}
    started = time.perf_counter()
    command = [sys.executable, "-c", _BARE_SDK, str(folder), str(concurrency)]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def run(args: list[str], db: Path, base_url: str) -> tuple[float, float, float, dict]:
    """`tracker ARGS` as its own process: wall seconds, CPU seconds (all its processes),
    CPU seconds of the import process alone, its --json summary."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TRACKER_"))},
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "TRACKER_DATABASE_URL": f"sqlite:///{db}",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-c", _TRACKER, *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"tracker {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    own = float(done.stderr.rsplit("OWN-CPU ", 1)[1].split()[0])
    return wall, cpu, own, json.loads(done.stdout) if done.stdout.strip() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.5, 0.2, 0.0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--claims", type=int, default=5, help="claims in each answer")
    parser.add_argument("--stored", type=int, default=100_000, help="claims already stored")
    parser.add_argument("--reimport", type=int, default=1000)
    args = parser.parse_args()
    words = vocabulary()

    def import_(folder: Path, db: Path, base_url: str) -> tuple[float, float, float, dict]:
        return run(["import", str(folder), "-c", str(args.concurrency), "-q", "--json"],
                   db, base_url)  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # The stored claims are seeded once and kept for reruns (a few minutes at 100,000).
        base = Path(tempfile.gettempdir()) / f"tracker-throughput-{args.stored}.db"
        seed(base, args.stored, lambda r: sentence(r, words))
        print(f"{args.stored:,} claims stored; {args.claims} claims in each answer")
        with FakeLLM(respond=sentence_claims(args.claims)) as fake:
            _, startup, _, _ = run(["stats", "--json"], base, fake.base_url)
        print(f"  start-up and one query (tracker stats): {startup * 1000:.0f} ms CPU")
        for number, latency in enumerate(args.latency):
            folder = tmp_path / f"batch-{number}"
            write_articles(folder, args.n, words, seed_=number + 11)
            db = tmp_path / f"t{number}.db"
            shutil.copy(base, db)
            ideal = args.n * latency / args.concurrency
            with FakeLLM(respond=sentence_claims(args.claims), latency=latency) as fake:
                wall, cpu, own, summary = import_(folder, db, fake.base_url)
                bare = bare_sdk(folder, args.concurrency, fake.base_url)
                calls = len(fake.requests)
            if calls != 2 * args.n:
                sys.exit(f"expected {2 * args.n} model calls, the server saw {calls}")
            per_article = (cpu - startup) / args.n * 1000
            own_per_article = (own - startup) / args.n * 1000
            ratio = f"{wall / ideal:4.2f}x ideal {ideal:5.2f} s" if ideal else "(no latency)"
            print(f"N={args.n} L={latency * 1000:.0f} ms C={args.concurrency}: whole command "
                  f"{wall:6.2f} s, {ratio}; CPU beyond start-up {per_article:5.1f} ms an "
                  f"article in all ({cpu:5.2f} s), {own_per_article:5.1f} ms in the import "
                  f"process (the matcher process does the rest); {summary['claims']} claims, "
                  f"{summary['extracted']} extracted")  # fmt: skip
            floor = f" ({bare / ideal:4.2f}x)" if ideal else ""
            print(f"  the bare SDK sending the same {args.n} articles, C at a time, nothing "
                  f"else (the floor): {bare:5.2f} s{floor}")  # fmt: skip

        # Per-article CPU as a slope: N and 3N articles at L=0. The figures above subtract
        # only `tracker stats`'s start-up, so they spread over N what an import pays once
        # more (the SDK's import, the matcher process's start, its end).
        measured = {}
        for n in (args.n, 3 * args.n):
            folder = tmp_path / f"slope-{n}"
            write_articles(folder, n, words, seed_=n)
            db = tmp_path / f"s{n}.db"
            shutil.copy(base, db)
            with FakeLLM(respond=sentence_claims(args.claims)) as fake:
                _, cpu, own, _ = import_(folder, db, fake.base_url)
            measured[n] = cpu, own
        (cpu1, own1), (cpu3, own3) = measured[args.n], measured[3 * args.n]
        slope, own_slope = (cpu3 - cpu1) / (2 * args.n), (own3 - own1) / (2 * args.n)
        print(f"CPU per article, as the slope from {args.n} to {3 * args.n} articles (L=0): "
              f"{slope * 1000:5.1f} ms in all, {own_slope * 1000:5.1f} ms in the import "
              f"process, {(slope - own_slope) * 1000:5.1f} ms in the matcher process; paid "
              f"once a run: {cpu1 - args.n * slope:4.2f} s in all")  # fmt: skip

        folder = tmp_path / "archive"
        write_articles(folder, args.reimport, words, seed_=99)
        db = tmp_path / "r.db"
        with FakeLLM(respond=sentence_claims(args.claims)) as fake:
            import_(folder, db, fake.base_url)
            first = len(fake.requests)
            wall, _, _, summary = import_(folder, db, fake.base_url)
            again = len(fake.requests) - first
        print(f"re-import of {args.reimport} stored articles: {wall:.2f} s, {again} model "
              f"calls, {summary['skipped']} skipped")  # fmt: skip


if __name__ == "__main__":
    main()
