"""A database that cannot be written (issue 12): found before any model call, or stopping
the batch at the first write that fails, with one clear line and no SQL or article text."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.fakellm import FakeLLM, first_sentence_claim
from tests.test_import_batch import _articles
from tracker.cli import app
from tracker.db import get_engine


def _run(monkeypatch, settings, *args):
    monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
    return CliRunner().invoke(app, list(args))


def test_a_read_only_database_costs_no_model_call(tmp_path, monkeypatch):
    db = tmp_path / "ro.db"
    get_engine(f"sqlite:///{db}")  # created and migrated
    folder = _articles(tmp_path / "in", 20)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = make_settings(
            f"sqlite:///file:{db}?mode=ro&uri=true", openai_base_url=fake.base_url
        )
        result = _run(monkeypatch, settings, "import", str(folder))
        assert fake.requests == []
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("Cannot write to the database")
    assert "readonly database" in lines[0] and "Nothing was sent to the model" in result.stderr
    assert "Traceback" not in result.output and "INSERT" not in result.output


def test_a_full_disk_stops_the_batch_with_one_line_and_a_summary(tmp_path, monkeypatch):
    import tracker.db

    pragmas = tracker.db._sqlite_pragmas

    def small_disk(connection, record):  # SQLite's own "database or disk is full"
        pragmas(connection, record)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {max(pages, 1) + 2}")

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(60):  # articles big enough to fill a few pages each
        (folder / f"a-{i:02d}.txt").write_text(f"Report {i}: officials said costs rose. " * 150)
    url = f"sqlite:///{tmp_path / 'full.db'}"
    get_engine(url)  # migrated before the disk "fills"
    tracker.db._engine_for.cache_clear()
    monkeypatch.setattr(tracker.db, "_sqlite_pragmas", small_disk)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = make_settings(url, openai_base_url=fake.base_url)
        result = _run(monkeypatch, settings, "import", str(folder), "-c", "2", "--json")
        requests = len(fake.requests)
    assert result.exit_code == 2, result.output
    summary = json.loads(result.stdout)
    assert summary["stopped"].startswith("the database cannot be written: database or disk is")
    assert requests <= summary["extracted"] + 2 * 2 + 2  # stopped, not 60 paid requests
    assert "Traceback" not in result.output
    assert "officials said costs rose" not in result.stderr  # no SQL parameters printed
    tracker.db._engine_for.cache_clear()


@pytest.mark.parametrize("kind", ["readonly"])
def test_storage_reasons_are_one_line_without_sql(kind, tmp_path):
    import sqlite3

    import sqlalchemy as sa

    from tracker.db import storage_problem

    db = tmp_path / "x.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x TEXT)").connection.commit()
    engine = sa.create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    with pytest.raises(sa.exc.OperationalError) as raised, engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", ("secret article text",))
    reason, lasting = storage_problem(raised.value)
    assert reason == "attempt to write a readonly database" and lasting
    assert "INSERT" in str(raised.value)  # what SQLAlchemy would have printed
