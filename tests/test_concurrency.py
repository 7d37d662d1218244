"""Two imports at once (issue 12): no article extracted (and paid for) twice, no store
failure, no extracted article marked failed, and a new database created safely by any
number of processes; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, func, select

from tests.conftest import make_settings
from tests.fakellm import FakeLLM, first_sentence_claim
from tests.test_import_batch import _articles, _import_process
from tracker import lease
from tracker.db import create_db_engine, get_engine
from tracker.ingest import Extracted, Job, add_article, store
from tracker.models import Article, ArticleCreate, Claim, ModelCall, utcnow
from tracker.results import ExtractionFailed


def test_two_imports_at_once_ask_the_model_once_per_article(tmp_path, db_url):
    folder = _articles(tmp_path / "in", 30)
    with FakeLLM(respond=first_sentence_claim, latency=0.3) as fake:  # the runs overlap
        command, env = _import_process(folder, db_url, fake.base_url)
        runs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True,
                                 cwd=tmp_path) for _ in range(2)]  # fmt: skip
        results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
        assert [code for code, _ in results] == [0, 0], results
        assert len(fake.requests) == 30  # each article paid for once
    engine = get_engine(db_url)
    with Session(engine) as session:
        states = session.exec(
            select(Article.extraction_state, func.count()).group_by(Article.extraction_state)
        ).all()
        per_article = session.exec(
            select(Claim.article_id, func.count()).group_by(Claim.article_id)
        ).all()
        leases = session.exec(select(Article).where(Article.lease_owner.is_not(None))).all()
        calls = session.exec(select(func.count()).select_from(ModelCall)).one()
    assert dict(states) == {"extracted": 30}
    assert len(per_article) == 30 and {n for _, n in per_article} == {1}
    assert leases == [] and calls == 30
    assert any("being extracted by another import" in err for _, err in results)


def test_a_new_database_is_created_safely_by_many_processes_at_once(db_url):
    start = time.time() + 3  # all of them at the same moment
    code = (
        "import sys, time; time.sleep(max(0, float(sys.argv[2]) - time.time())); "
        "from tracker.db import get_engine; get_engine(sys.argv[1])"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", code, db_url, str(start)], stderr=subprocess.PIPE,
                         text=True)
        for _ in range(6)
    ]  # fmt: skip
    results = [(run.wait(timeout=120), run.stderr.read()[-500:]) for run in runs]
    assert [code for code, _ in results] == [0] * 6, results
    engine = create_db_engine(db_url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            triggers = conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%fts%'"
            ).scalar()
            assert triggers == 6
    engine.dispose()


def _job(engine, text: str) -> Job:
    article, _ = add_article(engine, ArticleCreate(text=text, title="T"))
    return Job(article.text, article.title, "x.txt", article.id, article.extraction_state)


def test_a_live_lease_is_respected_and_a_lapsed_or_dead_ones_is_taken_over(engine):
    article_id = _job(engine, "Officials said 4 bridges need repairs.").article_id
    with Session(engine) as session:
        assert lease.acquire(session, article_id, "host-a:1:x", 300)
        assert not lease.acquire(session, article_id, "host-b:2:y", 300)  # held, alive
        session.execute(
            sa.update(Article)
            .where(Article.id == article_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        assert lease.acquire(session, article_id, "host-b:2:y", 300)  # lapsed
        session.commit()
    named = "from tracker import lease; print(lease.new_owner())"  # a process that has ended
    holder = subprocess.run([sys.executable, "-c", named],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    with Session(engine) as session:
        session.execute(sa.update(Article).values(lease_owner=holder))
        assert lease.acquire(session, article_id, "host-c:3:w", 300)  # its process is gone
        session.commit()


def test_a_pid_is_judged_dead_only_in_this_container_and_for_the_process_that_had_it(engine):
    """Containers that share a host name (`docker --network host`) number their processes
    apart: a pid missing here may be alive there. And a pid can be taken by a new process."""
    host, _, identity, _ = lease.new_owner().split(":")
    boot, namespace, _ = identity.split(".")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    parent = str(os.getppid())
    elsewhere = f"{host}:{gone}:{boot}.{int(namespace) + 1}.123:t"  # another PID namespace
    reused = f"{host}:{parent}:{boot}.{namespace}.1:t"  # its pid, but not its start time
    alive = f"{host}:{parent}:{lease._identity(parent)}:t"
    older = f"{host}:{gone}:t"  # an owner named before identities: its lease runs out
    assert [lease._dead(h) for h in (elsewhere, reused, alive, older)] == [
        False, True, False, False,
    ]  # fmt: skip
    article_id = _job(engine, "Officials said 6 bridges need repairs.").article_id
    with Session(engine) as session:
        until = utcnow() + timedelta(seconds=60)
        session.execute(sa.update(Article).values(lease_owner=elsewhere, lease_expires_at=until))
        assert not lease.acquire(session, article_id, "host-c:3:w", 300)  # was taken over


def test_a_failure_never_overwrites_an_article_another_import_extracted(engine):
    job = _job(engine, "Officials said 5 bridges need repairs.")
    with Session(engine) as session:
        article = session.get(Article, job.article_id)
        article.extraction_state, article.extracted_at = "extracted", utcnow()
        session.add(article)
        session.commit()
    settings = make_settings(str(engine.url.render_as_string(hide_password=False)))
    outcome = store(engine, Extracted(job, settings, failure=ExtractionFailed("HTTP 500", [])))
    assert outcome.state == "failed"  # this run's attempt failed ...
    with Session(engine) as session:
        article = session.get(Article, job.article_id)
        assert article.extraction_state == "extracted"  # ... the article stays extracted
        assert article.extraction_error is None


@pytest.mark.parametrize("rounds", [3])
def test_two_imports_with_force_at_once_store_every_article(tmp_path, db_url, rounds):
    """Re-extracting (--force) from two processes at once replaces claims other articles'
    new claims match: no foreign-key violation or deadlock fails an article."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(12):  # claims that match each other across articles
        (folder / f"a-{i:02d}.txt").write_text(
            f"Officials said the new bridge over the river will cost 40 million dollars. "
            f"Report {i} repeats it."
        )
    with FakeLLM(respond=first_sentence_claim) as fake:
        command, env = _import_process(folder, db_url, fake.base_url)
        assert subprocess.run(command, env=env, cwd=tmp_path).returncode == 0
        for _ in range(rounds):
            runs = [subprocess.Popen([*command, "--force"], env=env, stderr=subprocess.PIPE,
                                     text=True, cwd=tmp_path) for _ in range(2)]  # fmt: skip
            results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
            assert [code for code, _ in results] == [0, 0], "\n".join(e for _, e in results)
    with Session(get_engine(db_url)) as session:
        states = session.exec(select(Article.extraction_state)).all()
    assert set(states) == {"extracted"}
