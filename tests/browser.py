"""Driving the dashboard in a real browser: `streamlit run app.py` on loopback, Debian's
Chromium through Playwright, and a desk's worth of claims to work on.

Used by tests/test_browser*.py and bench/dashboard_browser.py. Skips, with the reason,
when Chromium or Playwright is missing (`.ci/run` installs both).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from tracker.ingest import add_article
from tracker.models import ArticleCreate, Claim

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

TOPICS = ["deficit", "jobs", "taxes", "schools", "bridges", "health"]
OUTLETS = ["Gazette", "Wire", "Herald"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_desk(engine: Engine, per_article: int = 40, articles: int = 3) -> list[int]:
    """Articles whose sentences are the claims' quotes: six topics, three outlets, scores
    spread so that the queue has several pages (50 a page). Returns the claim ids."""
    ids = []
    for a in range(articles):
        sentences = []
        for i in range(per_article):
            n = a * per_article + i
            topic = TOPICS[n % len(TOPICS)]
            sentences.append(
                f"The {topic} figure for district {n} rose to {n % 9}.{n % 7}% in {2000 + n % 25}."
            )
        text = "\n\n".join(sentences)
        article, _ = add_article(
            engine,
            ArticleCreate(text=text, title=f"Report {a + 1}", outlet=OUTLETS[a % len(OUTLETS)]),
        )
        with Session(engine) as session:
            offset = 0
            for i, sentence in enumerate(sentences):
                n = a * per_article + i
                claim = Claim(
                    article_id=article.id,
                    text=sentence,
                    quote=sentence,
                    quote_start=offset,
                    quote_end=offset + len(sentence),
                    claim_type="statistic" if n % 3 else "event",
                    claimant=f"Official {n % 4}" if n % 2 else None,
                    checkworthiness=round(0.99 - (n * 37 % 100) / 101, 3),
                )
                session.add(claim)
                session.flush()
                ids.append(claim.id)
                offset += len(sentence) + 2
            session.commit()
    return ids


@contextmanager
def dashboard(database_url: str, *, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Iterator[str]:  # fmt: skip
    """`streamlit run app.py` on a free loopback port; yields its URL."""
    port = free_port()
    environment = {**os.environ, "TRACKER_DATABASE_URL": database_url, **(env or {})}
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    log = open(Path(cwd or ROOT / "test-artifacts") / f"streamlit-{port}.log", "w")  # noqa: SIM115
    server = subprocess.Popen(command, env=environment, cwd=cwd or ROOT, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("streamlit did not start; see " + log.name) from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_for(condition, timeout: float = 20.0, what: str = "the database to change") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)
