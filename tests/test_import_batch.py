"""Batch import against the loopback OpenAI-compatible server (tests/fakellm.py):
input formats, faults, resumption after SIGKILL, idempotence, exit codes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.fakellm import FakeLLM, Reply, error, every, first_sentence_claim
from tracker.cli import app
from tracker.db import get_engine
from tracker.models import Article, Claim, ModelCall
from tracker.readers import ReadError, read_articles

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "state-of-the-union"


def _articles(folder: Path, n: int, prefix: str = "story") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}-{i:03d}.txt").write_text(
            f"Officials said {i + 3} bridges in district {i} need urgent repairs this year. "
            f"The council will vote on the plan on March {i % 28 + 1}.",
            encoding="utf-8",
        )
    return folder


@pytest.fixture
def cli(monkeypatch):
    """Run `tracker` in-process against `settings`."""

    def invoke(settings, *args: str, input: str | None = None):
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        return CliRunner().invoke(app, list(args), input=input)

    return invoke


def _settings(tmp_path: Path, fake: FakeLLM, **values):
    values = {"max_retries": 1, "request_timeout": 1.0, "max_reasks": 1, **values}
    return make_settings(
        f"sqlite:///{tmp_path / 'batch.db'}", openai_base_url=fake.base_url, **values
    )


def _states(settings) -> dict[str, int]:
    with Session(get_engine(settings.database_url)) as session:
        rows = session.exec(
            select(Article.extraction_state, func.count()).group_by(Article.extraction_state)
        ).all()
    return dict(rows)


# --- Inputs -----------------------------------------------------------------------------


def test_every_input_format_gives_text_and_metadata(tmp_path):
    (tmp_path / "a.md").write_text(
        "---\ntitle: Bridge report\nurl: https://example.org/bridges\noutlet: Gazette\n"
        "author: Jo Lee\ndate: 2024-03-05\n---\nOfficials said 12 bridges need repairs.\n"
    )
    (tmp_path / "b.html").write_text(
        "<html><head><title>Tax vote</title><meta name='author' content='Ann Poe'>"
        "<meta property='og:site_name' content='Daily Planet'>"
        "<link rel='canonical' href='https://example.org/tax'></head><body>"
        "<nav>Home | World | Sport</nav><article><h1>Tax vote</h1>"
        "<p>The council said taxes rose 4% last year, the most since 2001.</p>"
        "<p>The mayor said the vote will be held on March 24.</p>"
        "<script>alert('x')</script></article><footer>© 2024</footer></body></html>"
    )
    (tmp_path / "c.json").write_text(
        json.dumps(
            [{"text": "Crime fell 12% in 2023.", "title": "Crime", "published_at": "2024-01-02"}]
        )
    )
    (tmp_path / "d.jsonl").write_text(
        '{"text": "Rents rose 9% in May.", "outlet": "Wire"}\n'
        "\n"
        "{not json\n"
        '{"title": "no text here"}\n'
        '["a list"]\n'
    )
    french = (
        "Le coût du pont a doublé en 2023, selon la mairie. Les élus ont voté à l'unanimité "
        "une enquête sur les dépenses, après que le préfet a déclaré que les travaux étaient "
        "« très en retard »."
    )
    (tmp_path / "e.txt").write_bytes(french.encode("cp1252"))

    items = list(read_articles([str(tmp_path)]))
    good = {Path(i.source_path).name: i for i in items if not isinstance(i, ReadError)}
    bad = {Path(i.source).name: i.reason for i in items if isinstance(i, ReadError)}

    md = good["a.md"]
    assert (md.title, md.url, md.outlet, md.author) == (
        "Bridge report", "https://example.org/bridges", "Gazette", "Jo Lee",
    )  # fmt: skip
    assert md.published_at.date().isoformat() == "2024-03-05"
    assert md.text.strip() == "Officials said 12 bridges need repairs."
    html = good["b.html"]
    assert (html.title, html.outlet, html.author) == ("Tax vote", "Daily Planet", "Ann Poe")
    assert "taxes rose 4%" in html.text and "alert" not in html.text and "Home |" not in html.text
    assert good["c.json[0]"].title == "Crime"
    assert good["d.jsonl:1"].outlet == "Wire"
    assert good["e.txt"].text == french  # not UTF-8: the encoding was detected
    assert bad == {
        "d.jsonl:3": "invalid JSON: Expecting property name enclosed in double quotes",
        "d.jsonl:4": 'missing "text" (the article\'s text, a string)',
        "d.jsonl:5": 'expected a JSON object with a "text" field',
    }


def test_globs_folders_and_stdin(tmp_path):
    _articles(tmp_path / "x", 3)
    (tmp_path / "x" / "notes.pdf").write_bytes(b"%PDF-1.4")
    assert len(list(read_articles([str(tmp_path / "x" / "*.txt")]))) == 3
    assert len(list(read_articles([str(tmp_path / "**" / "story-00[01].txt")]))) == 2
    (unsupported,) = read_articles([str(tmp_path / "x" / "notes.pdf")])
    assert unsupported.reason == "unsupported file type '.pdf'"
    stdin = io.BytesIO(b'{"text": "Prices rose 3% in May."}\n{"text": "Jobs fell."}\n')
    assert len(list(read_articles(["-"], stdin=stdin, stdin_format="jsonl"))) == 2


# --- Running ----------------------------------------------------------------------------


def test_batch_runs_concurrently_and_reimport_makes_no_model_call(cli, tmp_path):
    folder = _articles(tmp_path / "in", 12)
    with FakeLLM(respond=first_sentence_claim, latency=0.2) as fake:
        settings = _settings(tmp_path, fake)
        result = cli(settings, "import", str(folder), "-c", "6", "--json")
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        assert (summary["extracted"], summary["failed"], summary["claims"]) == (12, 0, 12)
        assert summary["prompt_tokens"] == 12 * 900  # the server's reported usage, summed
        assert fake.peak_in_flight == 6
        requests = len(fake.requests)

        again = cli(settings, "import", str(folder), "--json")
        assert again.exit_code == 0
        assert json.loads(again.stdout)["skipped"] == 12
        assert len(fake.requests) == requests  # zero model calls


@pytest.mark.parametrize("kind", ["429", "500", "timeout", "truncated", "invalid", "drop"])
def test_every_fault_kind_ends_each_article_extracted_or_failed_with_a_reason(cli, tmp_path, kind):
    folder = _articles(tmp_path / "in", 6)
    with FakeLLM(respond=first_sentence_claim, fault=every(2, kind), timeout_after=1.5) as fake:
        settings = _settings(tmp_path, fake)
        result = cli(settings, "import", str(folder), "-c", "3", "--json")
        assert kind in fake.faults
    summary = json.loads(result.stdout)
    assert summary["extracted"] + summary["failed"] == 6
    assert result.exit_code == (1 if summary["failed"] else 0)
    assert all(f["reason"] for f in summary["failures"])
    assert _states(settings).get("pending", 0) == 0
    assert summary["stopped"] is None  # a passing fault never stops the batch
    if kind == "429":
        assert summary["rate_limited"] >= 1


def test_failed_articles_are_kept_and_retried_on_request(cli, tmp_path):
    folder = _articles(tmp_path / "in", 3)
    (folder / "story-001.txt").write_text("FAILME: officials said 9 bridges are unsafe today.")
    fails = lambda _n, body: "500" if "FAILME" in json.dumps(body) else None  # noqa: E731
    with FakeLLM(respond=first_sentence_claim, fault=fails) as fake:
        settings = _settings(tmp_path, fake)
        first = cli(settings, "import", str(folder))
        assert first.exit_code == 1
        assert "Failed (1):" in first.stderr and "HTTP 500" in first.stderr
        assert _states(settings) == {"extracted": 2, "failed": 1}

        again = cli(settings, "import", str(folder))  # failed ones wait for --retry-failed
        assert again.exit_code == 0 and "failed before" in again.stderr

        # The dry run counts what the real run would do: the failed article is retried.
        plans = [
            json.loads(cli(settings, "import", *args, "--dry-run", "--json").stdout)
            for args in ([str(folder)], [str(folder), "--retry-failed"], ["--retry-failed"])
        ]
        assert [(p["new"], p["previously_failed"]) for p in plans] == [(0, 1), (1, 0), (1, 0)]

        fake.fault = None
        retried = cli(settings, "import", "--retry-failed")
        assert retried.exit_code == 0, retried.stderr
    assert _states(settings) == {"extracted": 3}


def test_dry_run_reads_and_estimates_without_calls_or_writes(cli, tmp_path):
    folder = _articles(tmp_path / "in", 4)
    (folder / "copy.txt").write_text((folder / "story-000.txt").read_text())
    (folder / "empty.txt").write_text("")
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(tmp_path, fake, price_input_per_mtok=1.0, price_output_per_mtok=2.0)
        result = cli(settings, "import", str(folder), "--dry-run", "--json")
        assert fake.requests == []
    plan = json.loads(result.stdout)
    assert result.exit_code == 1  # one unreadable input
    assert (plan["articles"], plan["new"], plan["duplicates"]) == (5, 4, 1)
    assert plan["invalid"] == [{"source": str(folder / "empty.txt"), "reason": "empty file"}]
    assert plan["prompt_tokens"] > 4 * 300 and plan["cost_usd"] > 0
    assert _states(settings) == {}

    # Through the Batch API the same requests cost half, and the estimate says so.
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(tmp_path, fake, price_input_per_mtok=1.0, price_output_per_mtok=2.0)
        batch = cli(settings, "import", str(folder), "--dry-run", "--batch-api", "--json")
        shown = cli(settings, "import", str(folder), "--dry-run", "--batch-api")
        assert fake.requests == []
    batch_plan = json.loads(batch.stdout)
    assert batch_plan["prompt_tokens"] == plan["prompt_tokens"] and batch_plan["batch_api"]
    assert batch_plan["cost_usd"] == pytest.approx(plan["cost_usd"] / 2, abs=1e-6)
    assert "at the Batch API's price" in shown.stderr


def test_usage_errors_exit_2(cli, tmp_path):
    with FakeLLM() as fake:
        settings = _settings(tmp_path, fake)
        assert cli(settings, "import").exit_code == 2
        assert cli(settings, "import", str(tmp_path), "--title", "x").exit_code == 2
        assert cli(settings, "import", "-", "--stdin-format", "pdf").exit_code == 2


def test_stats_counts_claims_and_failures(cli, tmp_path):
    folder = _articles(tmp_path / "in", 3)
    fails = lambda n, _body: "500" if n <= 2 else None  # noqa: E731  (first article: 2 tries)
    with FakeLLM(respond=first_sentence_claim, fault=fails) as fake:
        settings = _settings(tmp_path, fake)
        cli(settings, "import", str(folder), "-c", "1", "--outlet", "Gazette")
        result = cli(settings, "stats", "--json")
    data = json.loads(result.stdout)
    assert data["extraction"] == {"extracted": 2, "pending": 0, "failed": 1}
    assert data["by_status"] == {"unreviewed": 2} and data["by_outlet"] == {"Gazette": 2}
    assert data["failures"][0]["reason"].startswith("the model server failed (HTTP 500)")
    text = cli(settings, "stats").stdout
    assert "3 articles (2 extracted, 0 pending, 1 failed), 2 claims" in text


def _import_process(
    folder: Path, db: Path | str, base_url: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """`tracker import FOLDER` as a separate process: its command and environment (the
    offline extractor unless a model server is given). `db`: a SQLite file, or a URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TRACKER_"))}
    env["TRACKER_DATABASE_URL"] = db if isinstance(db, str) else f"sqlite:///{db}"
    if base_url:
        env |= {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-test-not-a-real-key-0000"}
    command = [sys.executable, "-m", "tracker.cli", "import", str(folder), "-c", "4", "-q"]
    return command, env


def test_the_command_closes_the_database_before_it_exits(tmp_path):
    """The `tracker` command leaves nothing alive to the garbage collector at exit (a
    speed-up): the database must still be closed, its write-ahead log folded in and
    removed, not left for the next process to recover."""
    folder = _articles(tmp_path / "in", 10)
    db = tmp_path / "closed.db"
    command, env = _import_process(folder, db)
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("closed")) == [
        "closed.db"
    ]
    assert _states_safe(make_settings(f"sqlite:///{db}")) == {"extracted": 10}


def test_a_database_that_fails_to_migrate_is_still_closed_at_exit(tmp_path):
    """An engine is closed at exit even when its migration fails (an unknown schema
    version: a newer tracker wrote it), so no write-ahead log is left beside the file."""
    db = tmp_path / "newer.db"
    engine = get_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffff'")
    engine.dispose()
    command, env = _import_process(tmp_path, db)
    command = [*command[:3], "stats"]  # (`python -m tracker.cli stats`)
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("newer")) == ["newer.db"]


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["info"],
        ["export", "--format", "jsonl"],
        ["claims"],
        ["score"],
        ["eval", "--task", "matching", "--data", "data"],
        ["import", "--enqueue", "in"],
        ["worker", "--until-empty"],
        ["feeds", "list"],
        ["batches"],
    ],
    ids=lambda args: " ".join(args[:3]),
)
def test_every_command_works_with_the_garbage_collector_on(tmp_path, args):
    """`tracker` pauses the garbage collector while a command loads its modules; a command
    that never resumed it would keep every reference cycle it made until it ends."""
    _articles(tmp_path / "in", 3)
    clef = tmp_path / "data" / "clef2020-claim-retrieval"  # a tiny claim-retrieval set
    (clef / "dev").mkdir(parents=True)
    (clef / "verified_claims.docs.tsv").write_text(
        "\tvclaim\ttitle\n0\tThe bridge cost 4 million dollars.\tBridge\n"
        "1\tUnemployment fell to 3 percent in 2019.\tJobs\n",
        encoding="utf-8",
    )
    (clef / "dev" / "tweets.queries.tsv").write_text(
        "\ttweet_content\n7\tthe bridge cost 4 million dollars!\n", encoding="utf-8"
    )
    (clef / "dev" / "tweet-vclaim-pairs.qrels").write_text("7 0 0 1\n", encoding="utf-8")
    _, env = _import_process(tmp_path / "in", tmp_path / "gc.db")
    env["TRACKER_EXTRACTOR"] = "offline"
    said = (  # the collector's state when the command is over, before any exit handler
        "import gc, sys\nfrom tracker.cli import main\nsys.argv[0] = 'tracker'\n"
        "try:\n    main()\nfinally:\n    sys.stderr.write(f'\\nGC-ON {gc.isenabled()}\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", said, *args], env=env, capture_output=True, text=True,
        cwd=tmp_path, input="The rate rose 4 percent in 2020.\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GC-ON True" in done.stderr, done.stderr[-2000:]


def test_a_reimport_starts_no_matcher_process(tmp_path, cli, monkeypatch):
    """A large import starts its matcher process with its first extraction; a re-import
    that extracts nothing starts none (it would wait for one to load its modules)."""
    folder = _articles(tmp_path / "in", 10)
    settings = make_settings(f"sqlite:///{tmp_path / 'm.db'}", extractor="offline")
    assert cli(settings, "import", str(folder), "-q").exit_code == 0
    from tracker.batch import _Matcher

    started: list[int] = []
    start = _Matcher.start
    monkeypatch.setattr(_Matcher, "start", lambda self: (started.append(1), start(self)))
    assert cli(settings, "import", str(folder), "-q").exit_code == 0
    assert started == []
    (folder / "new.txt").write_text("Officials said 99 ferries need repairs.", encoding="utf-8")
    assert cli(settings, "import", str(folder), "-q").exit_code == 0
    assert started  # the one new article: the matcher started with its lease
    assert _states(settings) == {"extracted": 11}


def _wait_until_extracted(db: Path, count: int, timeout: float = 30) -> None:
    """Until the import under test has extracted `count` articles, read through a read-only
    connection (opening the database through tracker here would migrate it, beside the
    import under test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                (done,) = conn.execute(
                    "SELECT count(*) FROM article WHERE extraction_state = 'extracted'"
                ).fetchone()
        except sqlite3.Error:  # not created yet, or mid-migration
            done = 0
        if done >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} articles were not extracted within {timeout} s")


def test_a_killed_import_resumes_without_duplicates(tmp_path):
    folder = _articles(tmp_path / "in", 24)
    db = tmp_path / "kill.db"
    with FakeLLM(respond=first_sentence_claim, latency=0.25) as fake:
        command, env = _import_process(folder, db, fake.base_url)
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, cwd=tmp_path)
        settings = make_settings(f"sqlite:///{db}")
        _wait_until_extracted(db, 6)
        process.send_signal(signal.SIGKILL)
        process.wait()
        interrupted = _states_safe(settings)
        assert 6 <= interrupted.get("extracted", 0) < 24

        rerun = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
    assert _states(settings) == {"extracted": 24}
    with Session(get_engine(settings.database_url)) as session:
        per_article = session.exec(
            select(Claim.article_id, func.count()).group_by(Claim.article_id)
        ).all()
        calls = session.exec(select(func.count()).select_from(ModelCall)).one()
    assert len(per_article) == 24 and {n for _, n in per_article} == {1}
    # At most the articles in flight (4 at the model, 4 waiting for the writer) were lost
    # and asked again.
    assert len(fake.requests) <= 24 + 2 * 4
    assert calls == 24  # the log keeps only committed work


def _states_safe(settings) -> dict[str, int]:
    try:
        return _states(settings)
    except Exception:  # the database may not exist yet
        return {}


def test_rate_limits_slow_the_batch_instead_of_failing_it(cli, tmp_path):
    folder = _articles(tmp_path / "in", 8)
    limited = lambda n, _body: "429" if n <= 3 else None  # noqa: E731
    with FakeLLM(respond=first_sentence_claim, fault=limited) as fake:
        settings = _settings(tmp_path, fake, max_retries=3)
        result = cli(settings, "import", str(folder), "-c", "4", "--json")
    summary = json.loads(result.stdout)
    assert result.exit_code == 0 and summary["extracted"] == 8
    assert summary["rate_limited"] == 3


def test_server_unreachable_stops_at_once(cli, tmp_path):
    folder = _articles(tmp_path / "in", 5)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'x.db'}",
        openai_base_url="http://127.0.0.1:9/v1",  # nothing listens on the discard port
        max_retries=0,
    )
    result = cli(settings, "import", str(folder), "-c", "1")
    assert result.exit_code == 2  # a configuration error
    assert "could not reach the model server at http://127.0.0.1:9/v1" in result.stderr
    assert "Stopped early" in result.stderr


def test_an_account_out_of_quota_stops_the_batch_without_retries(cli, tmp_path):
    folder = _articles(tmp_path / "in", 20)
    message = "You exceeded your current quota, please check your plan and billing details."
    quota = {
        "error": {"message": message, "type": "insufficient_quota", "code": "insufficient_quota"}
    }
    with FakeLLM(respond=lambda _request: Reply(status=429, body=quota)) as fake:
        settings = _settings(tmp_path, fake, max_retries=4)
        result = cli(settings, "import", str(folder), "-c", "2")
        sent = len(fake.requests)
    assert result.exit_code == 2, result.stderr
    assert "no quota left (429 insufficient_quota)" in result.stderr
    assert "Stopped early" in result.stderr
    assert sent <= 2  # one request per worker, no retry, no further article
    assert set(_states(settings)) == {"pending"}  # the next run, with credit, extracts them


def test_after_a_configuration_error_the_next_import_finishes_unasked(cli, tmp_path):
    folder = _articles(tmp_path / "in", 2)
    broken = make_settings(
        f"sqlite:///{tmp_path / 'x.db'}", openai_base_url="http://127.0.0.1:9/v1", max_retries=0
    )
    assert cli(broken, "import", str(folder), "-c", "1").exit_code == 2  # no server
    assert _states(broken) == {"pending": 2}  # kept, with their text (one leased ahead)
    with FakeLLM(respond=first_sentence_claim) as fake:
        fixed = broken.model_copy(update={"openai_base_url": fake.base_url})
        result = cli(fixed, "import", str(folder))
    assert result.exit_code == 0, result.stderr
    assert _states(fixed) == {"extracted": 2}


def test_a_storage_failure_fails_the_article_but_keeps_it_and_the_call_log(
    cli, tmp_path, monkeypatch
):
    folder = _articles(tmp_path / "in", 1)

    def broken_store(*_args):
        raise OSError("disk full")

    monkeypatch.setattr("tracker.ingest._record_success", broken_store)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(tmp_path, fake)
        result = cli(settings, "import", str(folder))
    assert result.exit_code == 1
    assert "could not store the claims: disk full" in result.stderr
    with Session(get_engine(settings.database_url)) as session:
        (article,) = session.exec(select(Article)).all()
        assert article.extraction_state == "failed" and article.text.startswith("Officials")
        assert session.exec(select(func.count()).select_from(ModelCall)).one() == 1


def test_force_reextracts_but_keeps_what_a_reviewer_changed(cli, tmp_path):
    from tracker.review import edit_claim

    folder = _articles(tmp_path / "in", 1)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = _settings(tmp_path, fake)
        cli(settings, "import", str(folder))
        engine = get_engine(settings.database_url)
        with Session(engine) as session:
            (claim,) = session.exec(select(Claim)).all()
        edit_claim(engine, claim.id, actor="ana", expected_version=1, text="Edited by Ana.")
        result = cli(settings, "import", str(folder), "--force")
        assert result.exit_code == 0 and len(fake.requests) == 2
    with Session(engine) as session:
        claims = session.exec(select(Claim)).all()
    assert [(c.id, c.text) for c in claims] == [(claim.id, "Edited by Ana.")]


def test_a_key_in_the_base_url_is_never_stored_or_shown(cli, tmp_path):
    folder = _articles(tmp_path / "in", 1)
    with FakeLLM(respond=lambda _b: error(400, "bad request for key QUERYSECRET123")) as fake:
        settings = _settings(tmp_path, fake)
        settings = settings.model_copy(
            update={"openai_base_url": fake.base_url + "?api-key=QUERYSECRET123"}
        )
        result = cli(settings, "import", str(folder))
    assert result.exit_code == 1 and "QUERYSECRET123" not in result.output
    with Session(get_engine(settings.database_url)) as session:
        stored = " ".join(
            str(v) for row in session.exec(select(ModelCall)) for v in row.model_dump().values()
        )
        stored += " ".join(a.extraction_error or "" for a in session.exec(select(Article)))
    assert "QUERYSECRET123" not in stored and "[redacted]" in stored


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_read_not_refused_as_binary(tmp_path, encoding):
    text = "The GDP grew by 2.5 percent in 2025, the minister said. Le chômage a baissé."
    (tmp_path / "wide.txt").write_bytes(text.encode(encoding))
    (item,) = read_articles([str(tmp_path / "wide.txt")])
    assert not isinstance(item, ReadError) and item.text == text


def test_a_short_latin1_line_is_not_read_as_a_dos_code_page(tmp_path):
    french = "Le chômage a baissé de 2 % en 2025, a déclaré le ministre.\n"
    (tmp_path / "fr.txt").write_bytes(french.encode("latin-1"))
    (tmp_path / "ru.txt").write_bytes("Безработица снизилась до 3 процентов в мае.".encode("cp866"))
    items = {Path(i.source_path).name: i.text for i in read_articles([str(tmp_path)])}
    assert items["fr.txt"] == french.strip() or items["fr.txt"] == french
    assert items["ru.txt"].startswith("Безработица")


def test_binary_files_are_still_refused(tmp_path):
    (tmp_path / "x.txt").write_bytes(bytes(range(256)) * 8)
    (item,) = read_articles([str(tmp_path / "x.txt")])
    assert isinstance(item, ReadError) and "binary" in item.reason


def test_two_imports_of_the_same_folder_at_once_store_each_claim_once(tmp_path):
    """Two colleagues (or the CLI and the dashboard) importing the same files at the same
    time: each article ends with one set of claims, not one from each run."""
    if not CORPUS.is_dir():  # the same test with or without ../shared, or none at all
        pytest.skip(f"needs the State of the Union corpus at {CORPUS}")
    folder = tmp_path / "speeches"
    folder.mkdir()
    for source in sorted(CORPUS.glob("*.txt"))[:6]:
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    db = tmp_path / "twice.db"
    command, env = _import_process(folder, db)
    runs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, cwd=tmp_path)
            for _ in range(2)]  # fmt: skip
    assert [run.wait(timeout=300) for run in runs] == [0, 0], [r.stderr.read() for r in runs]
    with sqlite3.connect(db) as conn:
        spans = conn.execute("SELECT article_id, quote_start, quote_end FROM claim").fetchall()
    assert spans and len(spans) == len(set(spans))


def test_two_forced_imports_at_once_extract_each_article_once(cli, tmp_path):
    folder = _articles(tmp_path / "in", 40)
    db = tmp_path / "batch.db"  # (_settings' database)
    with FakeLLM(respond=first_sentence_claim, latency=0.05) as fake:
        settings = _settings(tmp_path, fake)
        assert cli(settings, "import", str(folder)).exit_code == 0
        fake.requests.clear()
        command, env = _import_process(folder, db, fake.base_url)
        runs = [subprocess.Popen([*command, "--force"], env=env, stderr=subprocess.PIPE,
                                 cwd=tmp_path) for _ in range(2)]  # fmt: skip
        assert [run.wait(timeout=300) for run in runs] == [0, 0], [r.stderr.read() for r in runs]
        sent = len(fake.requests)
    assert sent == 40  # was 79 of 80: each forced run extracted what the other just had


def test_reimporting_with_metadata_fills_in_what_the_article_lacked(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    from tracker.config import get_settings

    get_settings.cache_clear()
    folder = _articles(tmp_path / "in", 1)
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(folder)]).exit_code == 0
    again = runner.invoke(app, ["import", str(folder), "--outlet", "AP", "--author", "Jo Lee"])
    assert again.exit_code == 0
    wire = runner.invoke(app, ["import", str(folder), "--outlet", "Reuters"])
    assert wire.exit_code == 0
    with Session(get_engine(get_settings().database_url)) as session:
        (article,) = session.exec(select(Article)).all()
    assert (article.outlet, article.author) == ("AP", "Jo Lee")  # filled once, then kept
    get_settings.cache_clear()


def test_ctrl_c_reports_the_articles_stored_in_the_run(tmp_path):
    folder = _articles(tmp_path / "in", 24)
    db = tmp_path / "int.db"
    with FakeLLM(respond=first_sentence_claim, latency=0.25) as fake:
        command, env = _import_process(folder, db, fake.base_url)
        process = subprocess.Popen(
            command, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            # Ctrl-C as in a terminal: a suite started as a background job (`.ci/run &`)
            # has SIGINT ignored, which its children would inherit, Python too.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        settings = make_settings(f"sqlite:///{db}")
        _wait_until_extracted(db, 6)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    stored = _states(settings).get("extracted", 0)
    assert f"Interrupted: {stored} article(s) extracted and stored in this run" in stderr


def test_an_error_extracting_one_article_fails_only_that_article(cli, tmp_path, monkeypatch):
    from tracker import offline

    real = offline.extract_offline

    def extract(text, **kwargs):  # a bug the odd text of one article trips over
        if "BOOM" in text:
            raise RecursionError("maximum recursion depth exceeded")
        return real(text, **kwargs)

    monkeypatch.setattr("tracker.offline.extract_offline", extract)
    folder = _articles(tmp_path / "in", 3)
    (folder / "story-001.txt").write_text("BOOM: officials said 9 bridges are unsafe today.")
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", extractor="offline")
    result = cli(settings, "import", str(folder))
    assert result.exit_code == 1
    assert "story-001.txt: extraction failed: RecursionError" in result.stderr
    assert "3 article(s): 2 extracted, 1 failed" in result.stderr


def test_an_unexpected_error_never_shows_the_articles_text(cli, tmp_path, monkeypatch):
    from pydantic import BaseModel, Field

    class Claim(BaseModel):
        text: str = Field(max_length=20)

    def extract(text, **kwargs):  # a validation error carries the value it refused
        Claim(text=text)

    monkeypatch.setattr("tracker.offline.extract_offline", extract)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("SECRET-SOURCE-WORDS: officials said 9 bridges are unsafe.")
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", extractor="offline")
    result = cli(settings, "import", str(folder))
    assert result.exit_code == 1
    assert "a.txt: extraction failed: Claim text: String should have at most 20" in result.stderr
    assert "SECRET-SOURCE-WORDS" not in result.stderr
