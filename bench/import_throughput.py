"""Import throughput of the real `tracker import` CLI against the loopback model server.

    python bench/import_throughput.py [--n 200] [--latency 0.2] [--concurrency 16]
                                      [--reimport 1000]

Prints, for N articles at model latency L and concurrency C: the wall time of the whole
command and of the batch itself, against the ideal N·L/C; then the time and the model
calls to re-import `--reimport` articles that are already stored; and peak memory (RSS)
of each run. Targets (issue 3): batch within 10 % of ideal; re-import under 2 s, 0 calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakellm import FakeLLM, first_sentence_claim  # noqa: E402


def write_articles(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(
            f"Officials said {i + j} bridges in district {j} need repairs costing ${j + 2}m."
            for j in range(12)
        )
        (folder / f"article-{i:05d}.txt").write_text(body, encoding="utf-8")


def run_import(folder: Path, db: Path, base_url: str, concurrency: int) -> tuple[float, dict, int]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TRACKER_"))},
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "TRACKER_DATABASE_URL": f"sqlite:///{db}",
    }
    command = ["tracker", "import", str(folder), "-c", str(concurrency), "-q", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        sys.exit(f"import failed ({done.returncode}):\n{done.stderr}")
    return wall, json.loads(done.stdout), max(peak_kb, before)


async def bare_sdk(base_url: str, n: int, concurrency: int) -> float:
    """The same requests straight through the openai SDK: the floor for this machine."""
    import httpx2
    import openai

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(
        api_key="sk-bench", base_url=base_url,
        http_client=openai.DefaultAsyncHttpxClient(limits=limits),
    )  # fmt: skip
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            text = f"<<<\nOfficials said {i} bridges need repairs.\n>>>"
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": text}]
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reimport", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        write_articles(tmp_path / "batch", args.n)
        ideal = max(args.n * args.latency / args.concurrency, 1e-9)
        with FakeLLM(respond=first_sentence_claim, latency=args.latency) as fake:
            wall, summary, peak = run_import(
                tmp_path / "batch", tmp_path / "t.db", fake.base_url, args.concurrency
            )
            calls = len(fake.requests)
            floor = asyncio.run(bare_sdk(fake.base_url, args.n, args.concurrency))
        batch = summary["seconds"]
        print(f"import of N={args.n} at L={args.latency * 1000:.0f} ms, C={args.concurrency}")
        print(f"  ideal N·L/C          {ideal:6.2f} s")
        print(
            f"  bare SDK, no tracker {floor:6.2f} s  ({(floor / ideal - 1) * 100:+.1f} % vs ideal)"
        )
        print(
            f"  batch (in-process)   {batch:6.2f} s  ({(batch / ideal - 1) * 100:+.1f} % vs ideal)"
        )
        print(f"  whole command        {wall:6.2f} s  ({(wall / ideal - 1) * 100:+.1f} % vs ideal)")
        print(f"  model calls          {calls}   extracted {summary['extracted']}")
        print(f"  peak RSS             {peak / 1024:6.1f} MiB")

        write_articles(tmp_path / "archive", args.reimport)
        with FakeLLM(respond=first_sentence_claim) as fake:
            run_import(tmp_path / "archive", tmp_path / "r.db", fake.base_url, args.concurrency)
            first = len(fake.requests)
            wall, summary, peak = run_import(
                tmp_path / "archive", tmp_path / "r.db", fake.base_url, args.concurrency
            )
            again = len(fake.requests) - first
        print(f"re-import of {args.reimport} stored articles")
        print(f"  whole command        {wall:6.2f} s   batch {summary['seconds']:.2f} s")
        print(f"  model calls          {again}   skipped {summary['skipped']}")
        print(f"  peak RSS             {peak / 1024:6.1f} MiB")


if __name__ == "__main__":
    main()
