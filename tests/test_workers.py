"""Extraction as a service (issue 13): articles queued in the database, workers taking
them with leases, on SQLite (one worker) and PostgreSQL (many, on any machines)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, func, select

from tests.fakellm import FakeLLM, article_text, first_sentence_claim
from tests.test_import_batch import _articles, _import_process
from tracker.batch import lease_ahead_of
from tracker.db import get_engine
from tracker.models import Article, Claim, ModelCall, Worker, utcnow
from tracker.workqueue import take


def _tracker(db_url: str, base_url: str | None, *args: str) -> tuple[list[str], dict]:
    """`tracker ARGS...` as a separate process: its command and environment."""
    _, env = _import_process(Path("."), db_url, base_url)
    return [sys.executable, "-m", "tracker.cli", *args], env


def _states(engine) -> dict[str, int]:
    with Session(engine) as session:
        return dict(
            session.exec(
                select(Article.extraction_state, func.count()).group_by(Article.extraction_state)
            ).all()
        )


def _claims_per_article(engine) -> Counter:
    with Session(engine) as session:
        return Counter(session.exec(select(Claim.article_id)).all())


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_enqueued_articles_wait_without_a_model_call_until_a_worker_takes_them(tmp_path, db_url):
    folder = _articles(tmp_path / "in", 12)
    with FakeLLM(respond=first_sentence_claim) as fake:
        command, env = _tracker(db_url, fake.base_url, "import", str(folder), "--enqueue")
        queued = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert queued.returncode == 0, queued.stderr
        assert "12 article(s) queued" in queued.stderr
        assert fake.requests == []  # no model call
        engine = get_engine(db_url)
        assert _states(engine) == {"pending": 12}
        stats = subprocess.run([*command[:3], "stats"], env=env, cwd=tmp_path,
                               capture_output=True, text=True)  # fmt: skip
        assert "Extraction queue: 12 pending" in stats.stdout

        command, env = _tracker(db_url, fake.base_url, "worker", "--until-empty", "-c", "4")
        worked = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert worked.returncode == 0, worked.stderr
        assert "12 extracted" in worked.stderr
        assert len(fake.requests) == 12
    assert _states(engine) == {"extracted": 12}
    assert set(_claims_per_article(engine).values()) == {1}
    with Session(engine) as session:  # the worker has signed off, its leases given back
        assert session.exec(select(Worker)).all() == []
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
    again = subprocess.run(_tracker(db_url, None, "import", str(folder), "--enqueue")[0],
                           env=env, cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert "0 article(s) queued, 12 done before" in again.stderr


def test_on_sqlite_a_second_worker_says_why_it_does_not_start(tmp_path):
    db = f"sqlite:///{tmp_path / 'one.db'}"
    get_engine(db)
    command, env = _tracker(db, None, "worker", "--poll", "0.2")
    first = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert second.returncode == 2
        assert "another worker is already running" in second.stderr
        assert "several workers need PostgreSQL" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, first.stderr.read()


def test_a_worker_stops_on_sigterm_after_the_articles_in_flight(tmp_path, db_url):
    folder = _articles(tmp_path / "in", 30)
    engine = get_engine(db_url)
    with FakeLLM(respond=first_sentence_claim, latency=0.5) as fake:
        command, env = _tracker(db_url, fake.base_url, "import", str(folder), "--enqueue", "-q")
        subprocess.run(command, env=env, cwd=tmp_path, check=True, capture_output=True)
        command, env = _tracker(db_url, fake.base_url, "worker", "-c", "3")
        worker = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        _wait(lambda: _states(engine).get("extracted", 0) >= 3)
        asked = len(fake.requests)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        err = worker.stderr.read()
    assert "finishing the articles in flight" in err
    states = _states(engine)
    assert states["extracted"] + states["pending"] == 30 and states["pending"] > 0
    assert states["extracted"] == len(fake.requests) <= asked + 3  # in flight: finished
    with Session(engine) as session:  # nothing left leased: the rest wait for any worker
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []


@pytest.mark.postgres
def test_three_workers_one_killed_extract_every_article_exactly_once(tmp_path, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database")
    folder = _articles(tmp_path / "in", 60)
    engine = get_engine(db_url)
    with FakeLLM(respond=first_sentence_claim, latency=0.4) as fake:
        command, env = _tracker(db_url, fake.base_url, "import", str(folder), "--enqueue", "-q")
        subprocess.run(command, env=env, cwd=tmp_path, check=True, capture_output=True)
        command, env = _tracker(db_url, fake.base_url, "worker", "--until-empty", "-c", "3",
                                "--poll", "0.2")  # fmt: skip
        workers = [subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE,
                                    text=True) for _ in range(3)]  # fmt: skip
        _wait(lambda: _states(engine).get("extracted", 0) >= 12)
        workers[0].kill()  # SIGKILL: no chance to give anything back
        workers[0].wait()
        held = _held_by(engine, workers[0].pid)  # what it had taken and not stored
        for survivor in workers[1:]:
            assert survivor.wait(timeout=180) == 0, survivor.stderr.read()
        asked = Counter(article_text(body) for body in fake.requests)
    assert _states(engine) == {"extracted": 60}
    assert len(_claims_per_article(engine)) == 60
    assert set(_claims_per_article(engine).values()) == {1}  # each stored once
    assert len(asked) == 60
    asked_again = {text for text, n in asked.items() if n > 1}
    # at the model, at the writer, read ahead, and leased ahead of a free worker
    assert asked_again <= held and len(held) <= 3 * 3 + lease_ahead_of(3)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ModelCall)).one() == 60


@pytest.mark.postgres
def test_three_workers_put_one_wire_sentence_from_many_outlets_in_one_cluster(tmp_path, db_url):
    """Workers store and compare claims concurrently, committing in any order: every copy of
    a wire sentence still ends in one cluster, and no claim is left uncompared."""
    if not db_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database")
    wire = "The port of Santos handled 4.2 million containers in 2023, a record."
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(24):
        (folder / f"outlet-{i:02d}.txt").write_text(f"{wire} Outlet {i} added its own line.\n")
    engine = get_engine(db_url)
    with FakeLLM(respond=first_sentence_claim, latency=0.05) as fake:
        command, env = _tracker(db_url, fake.base_url, "import", str(folder), "--enqueue", "-q")
        subprocess.run(command, env=env, cwd=tmp_path, check=True, capture_output=True)
        command, env = _tracker(db_url, fake.base_url, "worker", "--until-empty", "-c", "4",
                                "--poll", "0.1")  # fmt: skip
        workers = [subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE,
                                    text=True) for _ in range(3)]  # fmt: skip
        for worker in workers:
            assert worker.wait(timeout=180) == 0, worker.stderr.read()
    with Session(engine) as session:
        claims = session.exec(select(Claim)).all()
    assert len(claims) == 24 and {c.text for c in claims} == {wire}
    assert [c for c in claims if c.matched_at is None] == []
    assert len({c.cluster_id for c in claims}) == 1 and claims[0].cluster_id is not None


def _held_by(engine, pid: int) -> set[str]:
    """The texts of the articles a worker process held when it died."""
    with Session(engine) as session:
        owner = session.exec(select(Worker.owner).where(Worker.pid == pid)).one()
        return set(session.exec(select(Article.text).where(Article.lease_owner == owner)).all())


def test_a_lease_held_elsewhere_is_respected_until_it_runs_out(engine):
    from tracker.ingest import add_article
    from tracker.models import ArticleCreate

    article, _ = add_article(engine, ArticleCreate(text="Officials said 9 bridges are unsafe."))
    with engine.begin() as conn:  # a worker on another machine took it a moment ago
        conn.execute(
            sa.update(Article).values(
                lease_owner="elsewhere:4242:abc", leased_at=utcnow(),
                lease_expires_at=utcnow() + timedelta(seconds=60),
            )
        )  # fmt: skip
    assert take(engine, "here:1:x", 5, 60) == []
    with engine.begin() as conn:  # ... and died: its lease ran out
        conn.execute(sa.update(Article).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert take(engine, "here:1:x", 5, 60) == [article.id]
    assert take(engine, "there:2:y", 5, 60) == []  # now ours
