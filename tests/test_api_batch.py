"""The OpenAI Batch API path (`tracker import --batch-api`, `tracker batches`) against the
loopback fake server's `/v1/files` and `/v1/batches` (tests/fakellm.py): submit, poll,
results through validation and grounding, half-price tokens, per-article errors, and a
resume after the import was killed. Every answer here is hand-written by the fake server's
responders, not a real model's output."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from tests.conftest import TEST_KEY, make_settings
from tests.fakellm import FakeLLM, Reply, article_text, claims_reply, error, first_sentence_claim
from tests.test_import_batch import _articles, _import_process
from tests.test_workers import _states
from tracker.apibatch import lease_name
from tracker.cli import app
from tracker.db import get_engine
from tracker.models import ApiBatch, ApiBatchRequest, Article, Claim, ModelCall
from tracker.pricing import cost_usd


@pytest.fixture
def cli(monkeypatch):
    """Run `tracker` in-process against `settings`."""

    def invoke(settings, *args: str):
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        return CliRunner().invoke(app, list(args))

    return invoke


def _settings(db_url: str, fake: FakeLLM, **values):
    values = {"max_retries": 1, "request_timeout": 5.0, "max_reasks": 1,
              "batch_poll_interval": 0.01, "price_input_per_mtok": 0.40,
              "price_output_per_mtok": 1.60, **values}  # fmt: skip
    return make_settings(db_url, openai_base_url=fake.base_url, **values)


def _summary(result) -> dict:
    return json.loads(result.stdout[result.stdout.index("{") :])


def grounded_then_invented(request: dict) -> Reply:
    """Hand-written: a claim quoting the article's first sentence, and one whose quote is
    not in the article at all (which grounding must drop, whatever route it came by)."""
    text = article_text(request)
    first = text.split(". ")[0] + "."
    return claims_reply(
        {"quote": first, "claim": first},
        {"quote": "The moon is made of cheese, officials said.", "claim": "Moon is cheese."},
    )


def test_batch_api_submits_polls_and_stores_grounded_claims_at_half_price(cli, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 3)
    with FakeLLM(respond=grounded_then_invented) as fake:
        settings = _settings(db_url, fake, max_reasks=0)
        result = cli(settings, "import", str(folder), "--batch-api", "--json")
        assert result.exit_code == 0, result.output
        assert len(fake.batches) == 1
        (batch,) = fake.batches.values()
        assert batch["status"] == "completed" and batch["endpoint"] == "/v1/chat/completions"
        assert len(fake.batch_lines) == 3 and fake.chat_requests == []  # no ordinary call
        uploaded = [f for f in fake.files.values() if f["object"]["purpose"] == "batch"]
        assert len(uploaded) == 1
        assert TEST_KEY not in uploaded[0]["content"].decode()
    engine = get_engine(db_url)
    assert _states(engine) == {"extracted": 3}
    with Session(engine) as session:
        claims = session.exec(select(Claim)).all()
        calls = session.exec(select(ModelCall)).all()
        stored = session.exec(select(ApiBatch)).one()
        leased = session.exec(select(Article).where(Article.lease_owner.is_not(None))).all()
    assert len(claims) == 3 and not any("cheese" in c.text for c in claims)  # grounded only
    assert {c.batch_id for c in calls} == {batch["id"]} and len(calls) == 3
    assert (stored.provider_id, stored.status) == (batch["id"], "completed")
    assert stored.collected_at is not None and stored.requests_total == 3
    assert leased == []
    summary = _summary(result)
    assert summary["extracted"] == 3 and summary["dropped"] == 3
    assert summary["prompt_tokens"] == 3 * 900  # (the fake server's usage figures)
    full = cost_usd(settings, summary["prompt_tokens"], summary["completion_tokens"])
    assert full and summary["cost_usd"] == pytest.approx(full / 2)

    listed = cli(settings, "batches")
    assert listed.exit_code == 0 and batch["id"] in listed.output and "completed" in listed.output


def test_a_reask_after_a_batch_answer_is_an_ordinary_call(cli, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 2)

    def respond(request: dict) -> Reply:  # hand-written: invented first, grounded when re-asked
        if len(request["messages"]) > 2:
            return first_sentence_claim(request)
        return claims_reply({"quote": "Nothing like this is in the text.", "claim": "Made up."})

    with FakeLLM(respond=respond) as fake:
        settings = _settings(db_url, fake, max_reasks=1)
        result = cli(settings, "import", str(folder), "--batch-api", "--json")
        assert result.exit_code == 0, result.output
        assert len(fake.batch_lines) == 2 and len(fake.chat_requests) == 2  # the re-asks
    with Session(get_engine(db_url)) as session:
        calls = session.exec(select(ModelCall).order_by(ModelCall.id)).all()
        assert session.exec(select(func.count()).select_from(Claim)).one() == 2
    assert sorted((c.attempt, c.batch_id is None) for c in calls) == [
        (1, False), (1, False), (2, True), (2, True),
    ]  # fmt: skip
    summary = _summary(result)
    batch_tokens = {"batch_prompt_tokens": 2 * 900, "batch_completion_tokens": 2 * 300}
    expected = cost_usd(
        settings, summary["prompt_tokens"], summary["completion_tokens"], **batch_tokens
    )
    assert summary["cost_usd"] == pytest.approx(expected)


def test_a_failed_request_is_that_articles_error_and_the_others_are_stored(cli, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 3)

    def respond(request: dict) -> Reply:
        if "district 1 " in article_text(request):  # hand-written server error for one line
            return error(500, f"upstream overloaded (key {TEST_KEY})", retry_after_ms=None)
        return first_sentence_claim(request)

    with FakeLLM(respond=respond) as fake:
        settings = _settings(db_url, fake)
        result = cli(settings, "import", str(folder), "--batch-api", "--json")
        assert result.exit_code == 1, result.output
        assert fake.chat_requests == []
    engine = get_engine(db_url)
    assert _states(engine) == {"extracted": 2, "failed": 1}
    with Session(engine) as session:
        failed = session.exec(select(Article).where(Article.extraction_state == "failed")).one()
        logged = session.exec(select(ModelCall).where(ModelCall.article_id == failed.id)).one()
    assert "HTTP 500" in failed.extraction_error
    assert "upstream overloaded" in failed.extraction_error
    assert TEST_KEY not in failed.extraction_error and TEST_KEY not in (logged.response or "")
    assert TEST_KEY not in result.output
    assert logged.status_code == 500 and logged.batch_id is not None
    (failure,) = _summary(result)["failures"]
    assert "story-001" in failure["source"]


def test_an_expired_batch_leaves_the_unanswered_articles_pending_for_the_next_run(
    cli, db_url, tmp_path
):
    folder = _articles(tmp_path / "in", 3)
    with FakeLLM(respond=first_sentence_claim, batch_outcome="expired", batch_answered=1) as fake:
        settings = _settings(db_url, fake)
        result = cli(settings, "import", str(folder), "--batch-api")
        assert result.exit_code == 1, result.output  # not all extracted: said, and exit 1
        assert "2 failed" in result.output and "pending again" in result.output
        engine = get_engine(db_url)
        assert _states(engine) == {"extracted": 1, "pending": 2}
        with Session(engine) as session:
            waiting = session.exec(select(Article).where(Article.extraction_state == "pending"))
            assert {a.extraction_error for a in waiting} == {
                "the batch expired before this article was answered: it is pending again, "
                "for the next import"
            }
            assert session.exec(select(ApiBatch.status)).one() == "expired"
        fake.batch_outcome = "completed"
        again = cli(settings, "import", str(folder), "--batch-api")
        assert again.exit_code == 0, again.output
        assert len(fake.batches) == 2
        second = list(fake.batches.values())[-1]
        assert second["request_counts"]["total"] == 2  # only what the first left
    assert _states(engine) == {"extracted": 3}


def test_a_batch_the_server_refuses_leaves_every_article_pending(cli, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 2)
    with FakeLLM(respond=first_sentence_claim, batch_outcome="failed") as fake:
        result = cli(_settings(db_url, fake), "import", str(folder), "--batch-api")
    assert result.exit_code == 2, result.output  # a setup fault, as for ordinary calls
    assert "Stopped early: the server refused the batch: line 1: The model 'gpt-none'" in (
        result.output
    )
    engine = get_engine(db_url)
    assert _states(engine) == {"pending": 2}
    with Session(engine) as session:
        batch = session.exec(select(ApiBatch)).one()
    assert batch.status == "failed" and "gpt-none" in batch.error


def _process(tmp_path: Path, db_url: str, fake: FakeLLM, *args: str, **env_vars: str):
    command, env = _import_process(tmp_path, db_url, fake.base_url)
    env["TRACKER_BATCH_POLL_INTERVAL"] = "0.05"
    env.update(env_vars)
    return [*command[:3], *args], env


def _submitted(engine) -> ApiBatch | None:
    try:
        with Session(engine) as session:
            return session.exec(select(ApiBatch).where(ApiBatch.provider_id.is_not(None))).first()
    except Exception:  # the database may not exist yet
        return None


def _start_and_kill(
    tmp_path: Path, db_url: str, fake: FakeLLM, folder: Path, **env_vars: str
) -> ApiBatch:
    """`tracker import --batch-api` in a process, SIGKILLed once its (first) batch is
    submitted."""
    command, env = _process(
        tmp_path, db_url, fake, "import", str(folder), "--batch-api", "-q", **env_vars
    )
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    engine = get_engine(db_url)
    deadline = time.monotonic() + 60
    while (batch := _submitted(engine)) is None or batch.status != "in_progress":
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the batch was never submitted"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return batch


def _resume(
    tmp_path: Path, db_url: str, fake: FakeLLM, folder: Path, how: str, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    """Pick up a killed Batch API import: `tracker batches --resume`, or the import again."""
    args = ["batches", "--resume"] if how == "batches --resume" else [
        "import", str(folder), "--batch-api",
    ]  # fmt: skip
    command, env = _process(tmp_path, db_url, fake, *args, **env_vars)
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("how", ["batches --resume", "import again"])
def test_a_killed_batch_import_is_resumed_without_a_second_batch(tmp_path, db_url, how):
    folder = _articles(tmp_path / "in", 4)
    with FakeLLM(respond=first_sentence_claim, batch_hold=True) as fake:
        batch = _start_and_kill(tmp_path, db_url, fake, folder)
        engine = get_engine(db_url)
        with Session(engine) as session:
            owners = set(session.exec(select(Article.lease_owner)).all())
            assert session.exec(select(func.count()).select_from(ApiBatchRequest)).one() == 4
        assert owners == {lease_name(batch.id)}  # held for the batch, past the kill

        # Meanwhile, an ordinary import of the same files leaves them to the batch.
        command, env = _process(tmp_path, db_url, fake, "import", str(folder))
        ordinary = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert ordinary.returncode == 0, ordinary.stderr
        assert "4 article(s) were being extracted by another import" in ordinary.stderr
        assert fake.chat_requests == []

        fake.batch_hold = False
        resumed = _resume(tmp_path, db_url, fake, folder, how)
        assert resumed.returncode == 0, resumed.stderr
        assert len(fake.batches) == 1  # collected, not submitted again
        assert len(fake.batch_lines) == 4 and fake.chat_requests == []
    assert _states(engine) == {"extracted": 4}
    with Session(engine) as session:
        stored = session.exec(select(ApiBatch)).one()
        assert session.exec(select(func.count()).select_from(Claim)).one() == 4
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
    assert stored.status == "completed" and stored.collected_at is not None
    assert stored.collector is None


def test_a_cancelled_batch_stores_what_was_answered_and_leaves_the_rest_pending(tmp_path, db_url):
    folder = _articles(tmp_path / "in", 3)
    with FakeLLM(respond=first_sentence_claim, batch_hold=True, batch_answered=1) as fake:
        batch = _start_and_kill(tmp_path, db_url, fake, folder)
        command, env = _process(tmp_path, db_url, fake, "batches", "--cancel", str(batch.id))
        cancelled = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True,
                                   text=True, timeout=120)  # fmt: skip
        assert cancelled.returncode == 1, cancelled.stderr  # two articles were not extracted
        assert "cancelled before this article was answered" in cancelled.stderr
        assert next(iter(fake.batches.values()))["status"] == "cancelled"
    engine = get_engine(db_url)
    assert _states(engine) == {"extracted": 1, "pending": 2}
    with Session(engine) as session:
        stored = session.exec(select(ApiBatch)).one()
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
    assert stored.status == "cancelled"
    listed = subprocess.run(_process(tmp_path, db_url, fake, "batches")[0], env=env,
                            cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert "cancelled" in listed.stdout and "collected" in listed.stdout


class _NoBatchApi(FakeLLM):
    """The fake server as a server without the Batch API would answer (llama.cpp, say):
    a hand-written 404 for /v1/files and /v1/batches."""

    def _batch_api(self, head, path, raw):
        body = {"error": {"message": f"File Not Found: {path}", "type": "not_found_error"}}
        return 404, json.dumps(body).encode(), "application/json"


def test_a_server_without_the_batch_api_leaves_the_articles_pending_and_free(cli, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 2)
    with _NoBatchApi(respond=first_sentence_claim) as fake:
        result = cli(_settings(db_url, fake), "import", str(folder), "--batch-api")
        assert fake.requests == []
    assert result.exit_code == 2, result.output
    assert "The Batch API step failed: the server refused the batch: File Not Found" in (
        result.output
    )
    engine = get_engine(db_url)
    assert _states(engine) == {"pending": 2}
    with Session(engine) as session:
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
        assert session.exec(select(ApiBatch.status)).one() == "abandoned"


def _uploaded(fake: FakeLLM) -> list[bytes]:
    return [f["content"] for f in fake.files.values() if f["object"]["purpose"] == "batch"]


def test_a_run_over_the_request_limit_is_split_into_batches(cli, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 7)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake, batch_max_requests=3)
        result = cli(settings, "import", str(folder), "--batch-api", "--json")
        assert result.exit_code == 0, result.output
        assert [b["request_counts"]["total"] for b in fake.batches.values()] == [3, 3, 1]
        assert {b["status"] for b in fake.batches.values()} == {"completed"}
        assert len(fake.batch_lines) == 7 and fake.chat_requests == []
        assert len(_uploaded(fake)) == 3
    engine = get_engine(db_url)
    assert _states(engine) == {"extracted": 7}
    with Session(engine) as session:
        stored = session.exec(select(ApiBatch).order_by(ApiBatch.id)).all()
        requests = session.exec(select(ApiBatchRequest)).all()
        calls = session.exec(select(ModelCall)).all()
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
    assert [(b.status, b.requests_total) for b in stored] == [("completed", 3)] * 2 + [
        ("completed", 1)
    ]
    assert all(b.collected_at is not None and b.collector is None for b in stored)
    assert len({r.article_id for r in requests}) == 7 and len(requests) == 7
    assert sorted(c.article_id for c in calls) == sorted({c.article_id for c in calls})
    assert {c.batch_id for c in calls} == set(fake.batches)
    assert _summary(result)["extracted"] == 7

    listed = cli(settings, "batches")
    assert listed.exit_code == 0
    assert all(provider in listed.output for provider in fake.batches)


def test_the_byte_limit_splits_too_and_an_article_over_it_alone_is_its_error(cli, db_url, tmp_path):
    small = {"chunk_chars": 500, "chunk_overlap_chars": 100}
    probe = tmp_path / "probe"
    probe.mkdir()  # (a text of the same length as the others, not one of them)
    (probe / "probe.txt").write_text(
        "Officials said 9 bridges in district 8 need urgent repairs this year. "
        "The council will vote on the plan on March 20."
    )
    folder = _articles(tmp_path / "in", 3)
    sentence = "The council said repairs on bridge {} would cost more than planned this year. "
    long = "".join(sentence.format(i) for i in range(60))
    (folder / "story-001-long.txt").write_text(long)  # read second: the first batch goes on
    with FakeLLM(respond=first_sentence_claim) as fake:
        first = cli(_settings(db_url, fake, **small), "import", str(probe), "--batch-api")
        assert first.exit_code == 0, first.output
        (line,) = _uploaded(fake)  # one article, one request: the size of one line
        limit = int(len(line) * 2.5)
        settings = _settings(db_url, fake, batch_max_bytes=limit, **small)
        result = cli(settings, "import", str(folder), "--batch-api", "--json")
        assert result.exit_code == 1, result.output  # the long article was not extracted
        files = _uploaded(fake)[1:]
        assert len(files) == 2 and all(len(f) <= limit for f in files)
        assert [b["request_counts"]["total"] for b in fake.batches.values()] == [1, 2, 1]
        assert len(fake.batch_lines) == 4 and fake.chat_requests == []
    engine = get_engine(db_url)
    assert _states(engine) == {"extracted": 4, "pending": 1}
    with Session(engine) as session:
        big = session.exec(select(Article).where(Article.extraction_state == "pending")).one()
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
    assert "more than one batch may hold" in big.extraction_error
    assert f"TRACKER_BATCH_MAX_BYTES={limit}" in big.extraction_error
    (failure,) = _summary(result)["failures"]
    assert "story-001-long.txt" in failure["source"]


@pytest.mark.parametrize("how", ["batches --resume", "import again"])
def test_a_killed_import_of_several_batches_is_resumed_without_submitting_again(
    tmp_path, db_url, how
):
    folder = _articles(tmp_path / "in", 5)
    with FakeLLM(respond=first_sentence_claim, batch_hold=True) as fake:
        # (all three batches are submitted before the first wait)
        _start_and_kill(tmp_path, db_url, fake, folder, TRACKER_BATCH_MAX_REQUESTS="2")
        engine = get_engine(db_url)
        assert len(fake.batches) == 3
        with Session(engine) as session:
            stored = session.exec(select(ApiBatch).order_by(ApiBatch.id)).all()
            owners = session.exec(select(Article.lease_owner)).all()
        assert sorted(owners) == sorted(
            [lease_name(stored[0].id)] * 2 + [lease_name(stored[1].id)] * 2
            + [lease_name(stored[2].id)]
        )  # fmt: skip

        fake.batch_hold = False
        resumed = _resume(tmp_path, db_url, fake, folder, how, TRACKER_BATCH_MAX_REQUESTS="2")
        assert resumed.returncode == 0, resumed.stderr
        assert len(fake.batches) == 3  # collected, none submitted again
        assert len(fake.batch_lines) == 5 and fake.chat_requests == []
    assert _states(engine) == {"extracted": 5}
    with Session(engine) as session:
        stored = session.exec(select(ApiBatch)).all()
        assert session.exec(select(func.count()).select_from(Claim)).one() == 5
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
    assert [(b.status, b.collector) for b in stored] == [("completed", None)] * 3


class _RefusesTheSecondBatch(FakeLLM):
    """The fake server, refusing (a hand-written 400) any batch after the first."""

    def _create_batch(self, body):
        if self.batches:
            message = {"error": {"message": "Enqueued token limit reached for gpt-4.1-mini",
                                 "type": "invalid_request_error", "code": None}}  # fmt: skip
            return 400, json.dumps(message).encode(), "application/json"
        return super()._create_batch(body)


def test_a_later_batch_refused_stops_the_run_after_collecting_the_first(cli, db_url, tmp_path):
    folder = _articles(tmp_path / "in", 7)
    with _RefusesTheSecondBatch(respond=first_sentence_claim) as fake:
        settings = _settings(db_url, fake, batch_max_requests=3)
        result = cli(settings, "import", str(folder), "--batch-api")
        assert len(fake.batches) == 1 and len(fake.batch_lines) == 3
    assert result.exit_code == 2, result.output
    assert "Stopped early: the server refused the batch: Enqueued token limit" in result.output
    engine = get_engine(db_url)
    assert _states(engine) == {"extracted": 3, "pending": 4}  # the rest for a later run
    with Session(engine) as session:
        statuses = session.exec(select(ApiBatch.status).order_by(ApiBatch.id)).all()
        assert session.exec(select(Article).where(Article.lease_owner.is_not(None))).all() == []
    assert statuses == ["completed", "abandoned"]
