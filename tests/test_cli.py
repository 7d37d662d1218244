"""The `tracker` command, driven as a user would, with recorded model responses."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.conftest import SAMPLE, TEST_KEY
from tests.fakellm import claims_reply, error
from tests.test_extract_recorded import NO_US_TROOPS, REFUGEES, WAR_MONTH
from tracker.cli import app
from tracker.db import get_engine
from tracker.models import Article, ModelCall

TEXT = SAMPLE.read_text(encoding="utf-8")


@pytest.fixture
def run(monkeypatch):
    """Run `tracker ...` in-process; returns the result with stdout and stderr apart."""

    def invoke(*args: str, settings=None, input: str | None = None):
        if settings is not None:
            monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        return CliRunner().invoke(app, list(args), input=input)

    return invoke


def test_asking_for_a_model_without_one_says_how_to_configure_it(run, tmp_path):
    result = run("import", str(SAMPLE), "--extractor", "llm")
    assert result.exit_code == 2
    assert "No language model is configured" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr and "OPENAI_BASE_URL" in result.stderr


@pytest.mark.vcr
@pytest.mark.llm_replies(claims_reply(REFUGEES, NO_US_TROOPS, WAR_MONTH))
def test_import_then_export_jsonl_and_csv(run, llm_settings, tmp_path):
    result = run("import", str(SAMPLE), "--outlet", "AP", settings=llm_settings)
    assert result.exit_code == 0, result.stderr
    assert "3 claims" in result.stderr and "1 extracted, 0 failed" in result.stderr

    # Same text again: skipped, no model call (the cassette holds exactly one).
    again = run("import", str(SAMPLE), settings=llm_settings)
    assert again.exit_code == 0 and "already extracted" in again.stderr

    exported = run("export", "--format", "jsonl", settings=llm_settings)
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert TEXT[row["start"] : row["end"]] == row["quote"]
        assert row["status"] == "unreviewed" and row["sources"] == []
        assert row["article_title"] == "Nato peacekeepers lavrov"
    assert {r["claim_type"] for r in rows} == {"statistic", "position", "event"}

    target = tmp_path / "out" / "claims.csv"
    result = run("export", "-f", "csv", "-o", str(target), "--status", "unreviewed",
                 settings=llm_settings)  # fmt: skip
    assert result.exit_code == 0 and "3 claims written" in result.stderr
    with target.open(encoding="utf-8") as fh:
        assert [r["quote"] for r in csv.DictReader(fh)] == [r["quote"] for r in rows]


@pytest.mark.vcr
@pytest.mark.llm_settings(response_format="json_schema")  # no format probe: the SDK retries
@pytest.mark.llm_replies(
    error(500, "The server had an error while processing your request."),
    error(500, "The server had an error while processing your request."),
    error(500, "The server had an error while processing your request."),
    claims_reply(WAR_MONTH),
)
def test_server_errors_fail_one_article_and_the_batch_goes_on(run, llm_settings, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a-first.txt").write_text("The council said the bridge cost $4m, twice the plan.")
    shutil.copy(SAMPLE, folder / "b-second.txt")

    # One at a time, so the scripted replies of a re-recording reach the right article.
    result = run("import", str(folder), "-c", "1", settings=llm_settings)

    assert result.exit_code == 1
    assert "a-first.txt: the model server failed (HTTP 500) after 2 retries" in result.stderr
    assert "B second: 1 claims" in result.stderr
    assert "1 extracted, 1 failed" in result.stderr
    with Session(get_engine(llm_settings.database_url)) as session:
        states = {a.title: (a.extraction_state, a.extraction_error) for a in session.exec(
            select(Article))}  # fmt: skip
    assert states["B second"] == ("extracted", None)
    assert states["A first"][0] == "failed" and "HTTP 500" in states["A first"][1]
    with Session(get_engine(llm_settings.database_url)) as session:
        retries = dict(
            session.exec(
                select(Article.title, ModelCall.retries).join(
                    ModelCall, ModelCall.article_id == Article.id
                )
            ).all()
        )
    assert retries == {"A first": 2, "B second": 0}  # the failed call was tried three times


@pytest.mark.vcr
@pytest.mark.llm_replies(
    error(401, f"Incorrect API key provided: {TEST_KEY}. You can find your API key at ...",
          retry_after_ms=None),
)  # fmt: skip
def test_a_rejected_key_stops_the_batch_and_is_never_shown(run, llm_settings, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "one.txt").write_text("The council said the bridge cost $4m, twice the plan.")
    (folder / "two.txt").write_text("The mayor said crime fell 12% last year.")

    result = run("import", str(folder), "--concurrency", "1", settings=llm_settings)

    assert result.exit_code == 2  # a configuration error
    assert "refused the API key (401)" in result.stderr and "Stopped early" in result.stderr
    assert TEST_KEY not in result.output
    with Session(get_engine(llm_settings.database_url)) as session:
        (call,) = session.exec(select(ModelCall)).all()
        stored = " ".join(str(v) for v in call.model_dump().values())
        articles = session.exec(select(Article)).all()
    assert TEST_KEY not in stored and "[redacted]" in stored
    # Kept, and left pending: once the key is fixed, the next import extracts it unasked.
    assert [(a.title, a.extraction_state, a.extraction_error) for a in articles][1:] == [
        ("Two", "pending", None)
    ]  # two.txt was leased ahead, never sent: kept pending, without an error
    assert articles[0].extraction_state == "pending" and "401" in articles[0].extraction_error
    assert "1 article(s): 0 extracted, 1 failed" in result.stderr


def test_unreadable_inputs_are_reported_and_the_rest_go_on(run, tmp_path, llm_settings):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.txt").write_text("  \n")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (folder / "huge.txt").write_text("word " * 300)

    settings = llm_settings.model_copy(update={"max_article_bytes": 1000})
    result = run("import", str(folder), str(tmp_path / "missing.txt"), settings=settings)

    assert result.exit_code == 1
    assert "empty.txt: empty file" in result.stderr
    assert "binary.txt: binary file" in result.stderr
    assert "huge.txt: larger than the 0.001 MB limit (TRACKER_MAX_ARTICLE_BYTES)" in result.stderr
    assert "missing.txt: no such file or folder" in result.stderr
    assert "4 article(s): 0 extracted, 4 failed" in result.stderr


def test_export_refuses_unknown_formats_and_statuses(run):
    assert run("export", "--format", "xml").exit_code == 2
    result = run("export", "--status", "approved")
    assert result.exit_code == 2 and "not a status" in result.output


def test_info_shows_the_setup_but_not_the_key(run, llm_settings):
    result = run("info", settings=llm_settings)
    assert result.exit_code == 0
    assert "api key:      set" in result.stdout and TEST_KEY not in result.stdout
    assert "prompt hash:" in result.stdout


def _said(result) -> str:
    """The error message as one line (the terminal box wraps it)."""
    return " ".join(result.output.replace("│", " ").split())


def test_score_and_export_report_bad_paths_without_a_traceback(run, tmp_path):
    missing = run("score", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 2 and "No such file" in _said(missing)
    folder = run("score", str(tmp_path))
    assert folder.exit_code == 2 and "directory" in _said(folder)
    (tmp_path / "fr.txt").write_bytes("Le chômage a baissé de 2 % en 2025.\n".encode("latin-1"))
    assert run("score", str(tmp_path / "fr.txt")).exit_code == 0  # not UTF-8: detected
    into_folder = run("export", "-o", str(tmp_path))
    assert into_folder.exit_code == 2 and "is a folder" in _said(into_folder)


def test_an_export_file_gets_the_usual_permissions(run, tmp_path):
    """mkstemp makes files only their owner can read; an export is meant to be shared."""
    previous = os.umask(0o022)
    try:
        assert run("export", "-f", "csv", "-o", str(tmp_path / "c.csv")).exit_code == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "c.csv").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "url, reason",
    [
        ("not-a-url", "not a database URL"),
        ("postgresql://u:hunter2secret@127.0.0.1:1/db", "Connection refused"),
        ("sqlite:///{tmp}/notes.html", "file is not a database"),
    ],
)
def test_a_database_that_cannot_be_used_is_one_clear_line(tmp_path, monkeypatch, url, reason):
    (tmp_path / "notes.html").write_text("<p>not a database</p>" * 200)
    monkeypatch.setenv("TRACKER_DATABASE_URL", url.format(tmp=tmp_path))
    from tracker.config import get_settings

    get_settings.cache_clear()
    for command in (["info"], ["stats"], ["export"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert reason in result.stderr and "Traceback" not in result.output
        assert "hunter2secret" not in result.output
    get_settings.cache_clear()


def test_title_and_url_are_refused_for_inputs_that_hold_many_articles(run, tmp_path):
    lines = '{"text": "Taxes rose 4%.", "title": "A"}\n{"text": "Rents rose 9%.", "title": "B"}\n'
    result = run("import", "-", "--stdin-format", "jsonl", "--title", "Forced", input=lines)
    assert result.exit_code == 2 and "one article" in _said(result)
    (tmp_path / "many.json").write_text(f"[{lines.replace(chr(10), ',', 1).strip()}]")
    assert run("import", str(tmp_path / "many.json"), "--url", "https://x.example").exit_code == 2


# --- The review desk from the command line ----------------------------------------------


@pytest.fixture
def desk_db(monkeypatch, tmp_path):
    from tests.browser import seed_desk

    url = f"sqlite:///{tmp_path / 'desk.db'}"
    monkeypatch.setenv("TRACKER_DATABASE_URL", url)
    from tracker.config import get_settings

    get_settings.cache_clear()
    engine = get_engine(url)
    return engine, seed_desk(engine, per_article=10, articles=2)


def test_claims_lists_the_queue_with_its_filters_as_text_or_json(run, desk_db):
    result = run("claims", "--search", "deficit OR jobs", "--type", "statistic", "--json")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["claim_type"] == "statistic" for r in rows)
    assert all("deficit" in r["text"] or "jobs" in r["text"] for r in rows)
    assert [r["checkworthiness"] for r in rows] == sorted(
        (r["checkworthiness"] for r in rows), reverse=True
    )
    assert f"{len(rows)} claims match" in result.stderr
    assert {"id", "version", "status", "assignee", "dismissed", "reviewed_by"} <= set(rows[0])
    text = run("claims", "--limit", "3", "--sort", "newest")
    assert [line.split()[0] for line in text.stdout.splitlines()] == ["20", "19", "18"]
    bad = run("claims", "--status", "done")
    assert bad.exit_code == 2 and "is not a status" in bad.stderr


def test_review_acts_through_the_library_and_refuses_stale_versions(run, desk_db):
    engine, _ = desk_db
    result = run(
        "review", "1", "2", "--as", "Ana", "--status", "disputed", "--note", "Census says no.",
        "--assign", "Bea", "--source", "https://www.census.gov/x", "--stance", "refutes",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [  # one transaction: one new version
        "claim 1: disputed, assigned to Bea (version 2)",
        "claim 2: disputed, assigned to Bea (version 2)",
    ]
    with Session(engine) as session:
        from tracker.models import ReviewEvent, Source

        events = session.exec(select(ReviewEvent).where(ReviewEvent.claim_id == 1)).all()
        assert [e.action for e in events] == ["status", "assigned", "source_added"]
        assert session.exec(select(Source)).all()[0].stance == "refutes"
    stale = run("review", "1@1", "--as", "Ana", "--dismiss")
    assert stale.exit_code == 1 and "changed by someone else" in stale.stderr
    stale_source = run("review", "1@1", "--as", "Ana", "--source", "https://example.org/x")
    assert stale_source.exit_code == 1
    # Nothing is half done: a bad assignee refuses the status given with it too.
    half = run("review", "3", "--as", "Ana", "--status", "checked", "--assign", "\u200b")
    assert half.exit_code == 1 and "no visible character" in half.stderr
    with Session(engine) as session:
        from tracker.models import Claim

        assert session.get(Claim, 3).status == "unreviewed"
    assert run("review", "99999999999999999999", "--as", "Ana", "--dismiss").exit_code == 2
    fresh = run("review", "1@2", "--as", "Ana", "--dismiss")
    assert fresh.exit_code == 0 and "dismissed" in fresh.stdout
    listed = run("claims", "--dismissed", "only", "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [1]
    assert run("review", "999", "--as", "Ana", "--dismiss").exit_code == 1
    assert run("review", "1", "--status", "checked").exit_code == 2  # who?
    nobody = run("review", "1", "--as", "Ana")
    assert nobody.exit_code == 2 and "nothing to do" in nobody.stderr


def test_a_viewer_cannot_review_from_the_command_line_either(run, desk_db, monkeypatch):
    from tracker.config import get_settings
    from tracker.people import set_role

    engine, _ = desk_db
    monkeypatch.setenv("TRACKER_ADMINS", "root")
    get_settings.cache_clear()
    set_role(engine, "Vic", "viewer", actor="root")
    result = run("review", "1", "--as", "VIC", "--status", "checked")
    assert result.exit_code == 1 and "needs the reviewer role" in result.stderr


def test_titles_outlets_and_reasons_print_on_one_line_without_escapes(run, tmp_path):
    """A title, an outlet or a server's error can hold newlines and escape sequences: each
    prints on its own line, as text (a forged "extracted" line, a retitled terminal)."""
    from tests.conftest import make_settings
    from tests.fakellm import FakeLLM, first_sentence_claim

    forged = "x\n  ✓ Forged: 99 claims\n\x1b]0;pwned\x07\x1b[2J"
    (tmp_path / "a.json").write_text(json.dumps([
        {"text": "The mayor said 4 bridges need repairs.", "title": f"Bridges{forged}",
         "outlet": f"AP{forged}"},
        {"text": "The council said taxes rose 3 percent.", "title": f"Taxes{forged}"},
    ]))  # fmt: skip

    def respond(request):
        if "taxes" in request["messages"][-1]["content"]:
            return error(400, f"bad request{forged}")
        return first_sentence_claim(request)

    with FakeLLM(respond=respond) as fake:
        settings = make_settings(
            f"sqlite:///{tmp_path / 't.db'}", openai_base_url=fake.base_url, max_retries=0
        )
        imported = run("import", str(tmp_path / "a.json"), settings=settings)
        stats = run("stats", settings=settings)
    for output in (imported.stderr, stats.stdout):
        assert "\x1b" not in output and "\x07" not in output
        lines = output.splitlines()
        assert not any(line.lstrip().startswith("✓ Forged") for line in lines), output
        assert any("✓ Forged" in line for line in lines)  # shown, inside its own line
    assert "bad requestx ✓ Forged: 99 claims" in stats.stdout.replace("   ", " ")


def test_an_export_to_a_terminal_has_no_escape_sequences(tmp_path):
    import pty
    import subprocess
    import sys

    from tracker.db import get_engine
    from tracker.ingest import add_article
    from tracker.models import ArticleCreate, Claim

    url = f"sqlite:///{tmp_path / 't.db'}"
    engine = get_engine(url)
    article, _ = add_article(engine, ArticleCreate(
        text="The mayor said 4 bridges need repairs.", title="T \x1b]0;PWNED\x07\x1b[2J \u202e",
    ))  # fmt: skip
    with Session(engine) as session:
        session.add(Claim(article_id=article.id, text="4 bridges need repairs \x9b2J.",
                          quote="4 bridges need repairs", quote_start=15, quote_end=37,
                          checkworthiness=0.5))  # fmt: skip
        session.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "OPENAI_"))}
    for fmt in ("csv", "jsonl"):
        main, terminal = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "tracker.cli", "export", "--format", fmt],
            stdout=terminal, stderr=subprocess.PIPE, env={**env, "TRACKER_DATABASE_URL": url},
        )  # fmt: skip
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed: the export is over
                break
            if not chunk:
                break
            shown += chunk
        process.wait(timeout=60)
        os.close(main)
        assert process.returncode == 0, process.stderr.read()
        assert b"4 bridges need repairs" in shown
        for sequence in (b"\x1b", b"\x07", "\x9b".encode(), "\u202e".encode()):
            assert sequence not in shown, (fmt, shown)
