"""How fast the CLI answers: `tracker --help` and `tracker stats`, median of several runs.

    python bench/cli_startup.py [--runs 9] [--claims 100000]

Each command runs as a user runs it (a new process, the installed `tracker` script), against
a SQLite database already holding `--claims` claims for `stats` (built once and cached in
the temporary directory). A bare interpreter's start is printed for scale. Targets
(issue 13): `--help` under 0.5 s, `stats` under 0.8 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(command: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall time of `command` over `runs` runs (after one unmeasured warm-up run,
    so the file cache is warm as on a machine in use)."""
    subprocess.run(command, env=env, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--claims", type=int, default=100_000)
    args = parser.parse_args()

    tracker = shutil.which("tracker") or str(Path(sys.executable).parent / "tracker")
    database = Path(tempfile.gettempdir()) / f"tracker-startup-{args.claims}.db"
    if not database.exists():
        from bench.dashboard_scale import seed

        print(f"building a database of {args.claims:,} claims (once) ...", flush=True)
        seed(database, args.claims)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TRACKER_"))},
        "TRACKER_DATABASE_URL": f"sqlite:///{database}",
    }
    bare = timed([sys.executable, "-c", "pass"], env, args.runs)
    help_ = timed([tracker, "--help"], env, args.runs)
    stats = timed([tracker, "stats"], env, args.runs)
    print(f"median of {args.runs} runs, {args.claims:,} claims stored (SQLite)")
    print(f"  bare interpreter   {bare:6.3f} s")
    print(f"  tracker --help     {help_:6.3f} s   (target < 0.5 s)")
    print(f"  tracker stats      {stats:6.3f} s   (target < 0.8 s)")


if __name__ == "__main__":
    main()
