"""Attacks on issue 13's promises (the queue, the workers, matching, the Batch API): each
test is an operator's bad day that once went wrong."""

from __future__ import annotations

import json
import types

from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.conftest import TEST_KEY
from tests.fakellm import FakeLLM, first_sentence_claim
from tests.test_api_batch import _settings, _states
from tests.test_import_batch import _articles
from tracker.cli import app
from tracker.db import get_engine
from tracker.models import ApiBatch, Article


def _cli(monkeypatch, settings, *args: str):
    monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
    return CliRunner().invoke(app, list(args))


class _MangledOutput(FakeLLM):
    """A server whose batch output file holds, besides the real answers, lines of every
    wrong shape: valid JSON that is not an answer (a string response, a string error, a
    200 with no body, a list), garbage, and an answer for a request nobody made. The
    answer for the first request is replaced by one of these shapes."""

    def _answer_lines(self, batch, lines, expired=None):
        super()._answer_lines(batch, lines, expired)
        stored = self.files[batch["output_file_id"]]
        rows = [json.loads(line) for line in stored["content"].splitlines()]
        first = rows[0]["custom_id"]
        rows[0] = {"custom_id": first, "response": {"status_code": 200}, "error": None}
        third = rows[2]["custom_id"]
        rows[2] = {"custom_id": third, "response": {"status_code": 500, "body": {"error": "no"}}}
        junk = [
            {"custom_id": "article-999-chunk-1-batch-999", "response": "oops", "error": None},
            {"custom_id": "x", "response": None, "error": "a string, not an object"},
            [1, 2, 3],
            {"custom_id": rows[1]["custom_id"], "response": "oops", "error": None},
        ]
        text = "".join(json.dumps(row) + "\n" for row in [*junk, *rows]) + "{not json\n"
        stored["content"] = text.encode()


def test_a_mangled_batch_output_file_fails_only_the_articles_it_mangles(
    monkeypatch, db_url, tmp_path
):
    folder = _articles(tmp_path / "in", 3)
    with _MangledOutput(respond=first_sentence_claim) as fake:
        result = _cli(monkeypatch, _settings(db_url, fake), "import", str(folder), "--batch-api")
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    engine = get_engine(db_url)
    # The first article's answer has no body; the second's real answer comes after a
    # mangled duplicate (an answer wins over a repeat); the third's error is
    # a string where an object belongs.
    assert _states(engine) == {"failed": 2, "extracted": 1}
    with Session(engine) as session:
        batch = session.exec(select(ApiBatch)).one()
        assert batch.collected_at is not None
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []


class _LostOutput(FakeLLM):
    """A server that reports an output file, then answers 404 for it (deleted by someone
    with the same key, or past the provider's retention)."""

    def _answer_lines(self, batch, lines, expired=None):
        super()._answer_lines(batch, lines, expired)
        del self.files[batch["output_file_id"]]


def test_a_batch_whose_output_file_is_gone_leaves_its_articles_pending(
    monkeypatch, db_url, tmp_path
):
    folder = _articles(tmp_path / "in", 2)
    with _LostOutput(respond=first_sentence_claim) as fake:
        result = _cli(monkeypatch, _settings(db_url, fake), "import", str(folder), "--batch-api")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output
    engine = get_engine(db_url)
    assert _states(engine) == {"pending": 2}  # not failed: nothing was answered for them
    with Session(engine) as session:
        assert session.exec(select(ApiBatch)).one().collected_at is not None
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
        errors = set(session.exec(select(Article.extraction_error)).all())
    assert len(errors) == 1 and "is gone from the server" in errors.pop()


def test_worker_until_empty_does_not_wait_a_day_for_a_batch_api_batchs_articles(
    monkeypatch, db_url, tmp_path
):
    """`tracker worker --until-empty` (cron) exits when nothing is left for it, although
    articles a Batch API batch holds are pending for up to 26 h."""
    import asyncio
    from datetime import timedelta

    import sqlalchemy as sa

    from tracker.apibatch import LEASE_SECONDS, lease_name
    from tracker.models import utcnow
    from tracker.workqueue import work

    folder = _articles(tmp_path / "in", 2)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake)
        assert _cli(monkeypatch, settings, "import", str(folder), "--enqueue").exit_code == 0
        engine = get_engine(db_url)
        with engine.begin() as conn:
            first = conn.execute(sa.select(sa.func.min(Article.id))).scalar_one()
            conn.execute(
                sa.update(Article)
                .where(Article.id == first)
                .values(lease_owner=lease_name(1), leased_at=utcnow(),
                        lease_expires_at=utcnow() + timedelta(seconds=LEASE_SECONDS))
            )  # fmt: skip

        async def run():
            return await asyncio.wait_for(
                work(engine, settings, concurrency=2, until_empty=True, poll=0.1), timeout=20
            )

        report = asyncio.run(run())
    assert report.count("extracted") == 1
    assert _states(engine) == {"extracted": 1, "pending": 1}


def test_pending_counts_free_articles_as_workable(db_url, tmp_path, monkeypatch):
    from tracker.workqueue import pending

    folder = _articles(tmp_path / "in", 3)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake)
        assert _cli(monkeypatch, settings, "import", str(folder), "--enqueue").exit_code == 0
    engine = get_engine(db_url)
    assert pending(engine) == pending(engine, workable=True) == 3


def test_a_long_running_worker_matches_a_trickle_of_claims_while_it_runs(tmp_path, db_url):
    """A `tracker worker` service that extracts a few articles an hour compares their
    claims while it runs, not when it is stopped days later; claims a killed run left
    uncompared are compared too."""
    import signal
    import subprocess
    import time

    from tests.test_workers import _tracker
    from tracker.models import Claim

    wire = "The port of Santos handled 4.2 million containers in 2023, a record."
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        (folder / f"outlet-{i}.txt").write_text(f"{wire} Outlet {i} added its own line.\n")
    engine = get_engine(db_url)
    with FakeLLM(respond=first_sentence_claim) as fake:
        command, env = _tracker(db_url, fake.base_url, "import", str(folder), "--enqueue", "-q")
        subprocess.run(command, env=env, cwd=tmp_path, check=True, capture_output=True)
        command, env = _tracker(db_url, fake.base_url, "worker", "--poll", "0.2", "-q")
        worker = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                with Session(engine) as session:
                    claims = session.exec(select(Claim)).all()
                if len(claims) == 2 and all(c.matched_at is not None for c in claims):
                    break
                assert worker.poll() is None, worker.stderr.read()
                assert time.monotonic() < deadline, "the worker's claims were never compared"
                time.sleep(0.2)
            assert len({c.cluster_id for c in claims}) == 1 and claims[0].cluster_id
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0, worker.stderr.read()


def test_the_matcher_process_outlives_a_database_fault(monkeypatch):
    """The matcher goes on after a failed round (PostgreSQL restarted, its backend
    terminated): before, the exception ended the process and nothing was compared until
    the run ended, days later for a worker."""
    import os
    import threading

    import sqlalchemy.exc

    from tracker import matching

    rounds = []

    def flaky(engine, suggest, link, **options):
        rounds.append(1)
        if len(rounds) == 1:
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("terminated"))
        stop.set()
        return 0

    stop = threading.Event()
    closed = []
    engine = types.SimpleNamespace(dispose=lambda: closed.append(1))
    monkeypatch.setattr("tracker.matching.match_pending", flaky)
    monkeypatch.setattr("tracker.db.create_db_engine", lambda url: engine)
    monkeypatch.setattr("signal.signal", lambda *args: None)  # pytest keeps its Ctrl-C
    waits = []
    monkeypatch.setattr(stop, "wait", lambda seconds: waits.append(seconds))
    matching.match_until_stopped("sqlite://", 0.7, 0.9, stop, os.getppid())
    assert len(rounds) == 2 and waits and waits[0] > 0
    assert closed == [1]  # its connections closed as it ends


def test_stats_counts_every_article_being_extracted_not_only_those_listed(
    monkeypatch, db_url, tmp_path
):
    """`tracker stats --top 3` with 12 articles taken: 12 being extracted (3 listed); a
    lease that ran out (its worker died elsewhere) is not "being extracted"."""
    from datetime import timedelta

    import sqlalchemy as sa

    from tracker.models import utcnow

    folder = _articles(tmp_path / "in", 13)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake)
        assert _cli(monkeypatch, settings, "import", str(folder), "--enqueue").exit_code == 0
        engine = get_engine(db_url)
        with engine.begin() as conn:
            conn.execute(
                sa.update(Article).values(lease_owner="elsewhere:1:-:abc", leased_at=utcnow(),
                                          lease_expires_at=utcnow() + timedelta(seconds=300))
            )  # fmt: skip
            last = conn.execute(sa.select(sa.func.max(Article.id))).scalar_one()
            conn.execute(
                sa.update(Article)
                .where(Article.id == last)
                .values(lease_expires_at=utcnow() - timedelta(seconds=5))
            )
        shown = _cli(monkeypatch, settings, "stats", "--top", "3")
    assert shown.exit_code == 0, shown.output
    assert "Extraction queue: 13 pending (12 being extracted)" in shown.output


def test_a_worker_waits_out_a_database_restart_instead_of_crashing(monkeypatch, db_url, tmp_path):
    """PostgreSQL restarting while a worker looks for work (connections refused for a few
    seconds): the worker looks again later. Before, the error went up through the reader
    thread and ended the worker with a traceback, dropping the requests in flight."""
    import asyncio

    import psycopg
    import sqlalchemy.exc

    from tracker import workqueue

    folder = _articles(tmp_path / "in", 2)
    real_take = workqueue.take
    refused = []

    def restarting(engine, owner, limit, seconds):
        if len(refused) < 2:
            refused.append(1)
            raise sqlalchemy.exc.OperationalError(
                "SELECT", {}, psycopg.OperationalError("connection refused")
            )
        return real_take(engine, owner, limit, seconds)

    monkeypatch.setattr(workqueue, "take", restarting)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake)
        assert _cli(monkeypatch, settings, "import", str(folder), "--enqueue").exit_code == 0
        engine = get_engine(db_url)

        async def run():
            return await asyncio.wait_for(
                workqueue.work(engine, settings, concurrency=2, until_empty=True, poll=0.1), 30
            )

        report = asyncio.run(run())
    assert len(refused) == 2 and report.count("extracted") == 2 and not report.stopped


def test_a_killed_matcher_process_is_started_again_at_the_next_stored_article(db_url):
    import os
    import signal

    from tests.conftest import make_settings
    from tracker.batch import _Matcher

    engine = get_engine(db_url)
    matcher = _Matcher(engine, make_settings(db_url), at_once=True)
    try:
        first = matcher.process
        os.kill(first.pid, signal.SIGKILL)
        first.join(10)
        matcher.stored_one()
        assert matcher.process is not first and matcher.process.is_alive()
    finally:
        matcher.finish()
    assert not matcher.process.is_alive()


def test_a_worker_on_a_database_it_cannot_write_says_so_without_a_traceback(monkeypatch, tmp_path):
    """A worker whose first write (registering itself) fails, as on a full disk: exit 2
    with the database's one-line reason, not a traceback."""
    import sqlalchemy.exc

    from tests.conftest import make_settings

    db = f"sqlite:///{tmp_path / 'full.db'}"
    get_engine(db)

    def full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr("tracker.workqueue.register", full)
    result = _cli(monkeypatch, make_settings(db), "worker", "--until-empty")
    assert result.exit_code == 2, result.output
    assert "database or disk is full" in result.output and "Traceback" not in result.output


class _GoneAfterSubmit(FakeLLM):
    """The server takes the batch, then answers every look at it with a 503 (an outage
    longer than the client's retries)."""

    def _batch_api(self, head, path, raw):
        if head.method == b"GET" and "/batches/" in path:
            body = {"error": {"message": f"upstream down ({TEST_KEY})", "type": "server_error"}}
            return 503, json.dumps(body).encode(), "application/json"
        return super()._batch_api(head, path, raw)


def test_an_outage_while_waiting_on_a_batch_says_how_to_resume_without_a_traceback(
    monkeypatch, db_url, tmp_path
):
    folder = _articles(tmp_path / "in", 2)
    with _GoneAfterSubmit(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake, max_retries=0)
        result = _cli(monkeypatch, settings, "import", str(folder), "--batch-api")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2, result.output
    assert "tracker batches --resume" in result.output and TEST_KEY not in result.output
    engine = get_engine(db_url)
    with Session(engine) as session:
        batch = session.exec(select(ApiBatch)).one()
    assert batch.provider_id is not None and batch.collected_at is None
    assert batch.collector is None  # free for the resume at once


def test_a_matcher_whose_import_died_while_it_started_ends(monkeypatch):
    """The import killed while its matcher process was still starting: the matcher, now
    under init, ends instead of comparing claims (and holding the database) forever."""
    import os
    import threading

    from tracker import matching

    monkeypatch.setattr("tracker.matching.match_pending", lambda *args, **options: 0)
    monkeypatch.setattr("tracker.db.create_db_engine", lambda url: types.SimpleNamespace(
        dispose=lambda: None))  # fmt: skip
    monkeypatch.setattr("signal.signal", lambda *args: None)  # pytest keeps its Ctrl-C
    stop = threading.Event()  # never set: only the parent's death ends it
    waits = []

    def wait(seconds):
        waits.append(seconds)
        assert len(waits) < 20, "the matcher goes on with its import gone"

    monkeypatch.setattr(stop, "wait", wait)
    gone = os.getppid() + 1_000_000  # no such process: the import is gone
    matching.match_until_stopped("sqlite://", 0.7, 0.9, stop, gone)
    assert len(waits) <= 1


def test_a_worker_starts_through_a_dropped_connection(monkeypatch, db_url, tmp_path):
    """A terminated backend under the worker's first writes (checking the database is
    writable, registering itself) is tried again on a new connection; before, the worker
    exited 2 at once ("Cannot write to the database ... server closed the connection")."""
    import asyncio

    import psycopg
    import sqlalchemy.exc

    from tracker import db, workqueue

    def dropping(real):
        calls = []

        def once(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise sqlalchemy.exc.OperationalError(
                    "UPDATE", {}, psycopg.OperationalError("server closed the connection")
                )
            return real(*args, **kwargs)

        return once

    monkeypatch.setattr(workqueue, "register", dropping(workqueue.register))
    folder = _articles(tmp_path / "in", 1)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake)
        assert _cli(monkeypatch, settings, "import", str(folder), "--enqueue").exit_code == 0
        engine = get_engine(db_url)
        real_begin = engine.begin
        monkeypatch.setattr(engine, "begin", dropping(real_begin))
        check = db.check_writable
        check(engine)  # the dropped connection, then the real one
        monkeypatch.setattr(engine, "begin", real_begin)
        report = asyncio.run(workqueue.work(engine, settings, concurrency=1, until_empty=True))
    assert report.count("extracted") == 1


def test_a_run_stopped_by_a_bad_key_still_compares_the_claims_it_stored(
    monkeypatch, db_url, tmp_path
):
    """The key revoked half way: the run stops (every later article would fail), and
    the claims it stored before are compared, not left for some later run."""
    from tests.fakellm import error
    from tracker.models import Claim

    folder = _articles(tmp_path / "in", 3)
    answers = iter([None, "401"])

    def respond(request):
        if next(answers, "401") == "401":
            return error(401, "Incorrect API key provided", retry_after_ms=None)
        return first_sentence_claim(request)

    with FakeLLM(respond=respond) as fake:
        settings = _settings(db_url, fake)
        result = _cli(monkeypatch, settings, "import", str(folder), "-c", "1")
    assert result.exit_code == 2, result.output
    engine = get_engine(db_url)
    with Session(engine) as session:
        claims = session.exec(select(Claim)).all()
    assert len(claims) == 1 and claims[0].matched_at is not None


def test_a_killed_worker_of_this_machine_is_not_shown_running(db_url):
    """A worker SIGKILLed on this machine is gone from `tracker stats` (and no longer
    keeps the dashboard from running its own) at once, not a lease later."""
    import subprocess
    import sys

    from tests.conftest import make_settings
    from tracker import workqueue

    engine = get_engine(db_url)
    settings = make_settings(db_url)
    dead = subprocess.run(
        [sys.executable, "-c", "from tracker import lease; print(lease.new_owner())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with Session(engine) as session:
        from tracker.models import Worker

        session.add(Worker(owner=dead, host="here", pid=1, concurrency=1))
        session.commit()
    assert workqueue.state(engine, settings).workers == []
    assert not workqueue.worker_running(engine, settings)


def test_ctrl_c_on_a_worker_prints_no_traceback_from_its_matcher(tmp_path):
    """Ctrl-C reaches every process of the terminal's group, the matcher too: it must
    leave stopping to the worker (which compares what is left), not die with a
    KeyboardInterrupt traceback on the operator's screen."""
    import os
    import signal
    import subprocess
    import time

    from tests.test_workers import _tracker

    db = f"sqlite:///{tmp_path / 'c.db'}"
    get_engine(db)
    command, env = _tracker(db, "http://127.0.0.1:9/v1", "worker", "--poll", "0.2")
    worker = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)  # fmt: skip
    time.sleep(4)  # the matcher process has started
    os.killpg(worker.pid, signal.SIGINT)
    assert worker.wait(timeout=30) == 0
    err = worker.stderr.read()
    assert "Stopping" in err and "Traceback" not in err, err


class _RawUnicodeOutput(FakeLLM):
    """A server that writes its output file with non-ASCII characters unescaped, as JSON
    allows: U+2028 (LINE SEPARATOR) and U+0085 inside an answer's strings."""

    def _answer_lines(self, batch, lines, expired=None):
        super()._answer_lines(batch, lines, expired)
        stored = self.files[batch["output_file_id"]]
        rows = [json.loads(line) for line in stored["content"].splitlines()]
        for row in rows:
            message = row["response"]["body"]["choices"][0]["message"]
            message["content"] = json.dumps(json.loads(message["content"]), ensure_ascii=False)
        stored["content"] = "".join(
            json.dumps(row, ensure_ascii=False) + "\n" for row in rows
        ).encode()


def test_a_batch_answer_holding_a_unicode_line_separator_is_read_whole(
    monkeypatch, db_url, tmp_path
):
    """A quote holding U+2028 (pasted from a CMS) or U+0085 comes back raw in the output
    file: the file's lines are split on newlines only, not on every Unicode line break
    (which cut such an answer in two and failed its article as unanswered)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text(
        "Officials said\u2028 3 bridges need urgent repairs this year. The council votes.",
        encoding="utf-8",
    )
    (folder / "b.txt").write_text(
        "Officials said\x85 4 tunnels need urgent repairs this year. The council votes.",
        encoding="utf-8",
    )
    with _RawUnicodeOutput(respond=first_sentence_claim) as fake:
        result = _cli(monkeypatch, _settings(db_url, fake), "import", str(folder), "--batch-api")
        content = next(iter(f["content"] for f in fake.files.values()
                            if f["object"]["purpose"] == "batch_output"))  # fmt: skip
    assert "\u2028".encode() in content  # the test's premise: the raw character
    assert result.exit_code == 0, result.output
    assert _states(get_engine(db_url)) == {"extracted": 2}


def test_one_sqlite_worker_per_file_whatever_path_names_it(tmp_path):
    """Two workers on one SQLite file through a symlink (a `current` link, a mounted
    path): the second is refused, as on the same path."""
    import pytest

    from tracker.workqueue import WorkerBusy, sqlite_worker_lock

    real = tmp_path / "real.db"
    get_engine(f"sqlite:///{real}")
    (tmp_path / "link.db").symlink_to(real)
    with (
        sqlite_worker_lock(get_engine(f"sqlite:///{real}")),
        pytest.raises(WorkerBusy),
        sqlite_worker_lock(get_engine(f"sqlite:///{tmp_path / 'link.db'}")),
    ):
        pass


def test_worker_until_empty_gives_up_on_a_database_gone_for_good(monkeypatch, tmp_path):
    """`--until-empty` (cron) waits out a database restart, but not forever: after a
    lease's length of lost connections it exits 2 saying why."""
    import psycopg
    import sqlalchemy.exc

    from tests.conftest import make_settings

    db = f"sqlite:///{tmp_path / 'gone.db'}"
    get_engine(db)

    def refused(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError(
            "SELECT", {}, psycopg.OperationalError("connection refused")
        )

    monkeypatch.setattr("tracker.workqueue.take", refused)
    settings = make_settings(db, worker_lease=1)
    result = _cli(monkeypatch, settings, "worker", "--until-empty", "--poll", "0.1")
    assert result.exit_code == 2, result.output
    assert "connection refused" in result.output


class _DuplicateAfterAnswer(FakeLLM):
    """An output file where each real answer is followed by a second line for the same
    request: an error, or a 200 with no body."""

    def _answer_lines(self, batch, lines, expired=None):
        super()._answer_lines(batch, lines, expired)
        stored = self.files[batch["output_file_id"]]
        rows = [json.loads(line) for line in stored["content"].splitlines()]
        doubled = []
        for i, row in enumerate(rows):
            bad = {"status_code": 500, "body": {"error": {"message": "x"}}} if i % 2 else {}
            doubled += [row, {"custom_id": row["custom_id"], "response": bad, "error": None}]
        stored["content"] = "".join(json.dumps(row) + "\n" for row in doubled).encode()


def test_a_duplicate_line_does_not_hide_a_requests_answer(monkeypatch, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 2)
    with _DuplicateAfterAnswer(respond=first_sentence_claim) as fake:
        result = _cli(monkeypatch, _settings(db_url, fake), "import", str(folder), "--batch-api")
    assert result.exit_code == 0, result.output
    assert _states(get_engine(db_url)) == {"extracted": 2}
