"""A database that cannot be written (issue 12): found before any model call, or stopping
the batch at the first write that fails, with one clear line and no SQL or article text."""

from __future__ import annotations

import contextlib
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


# --- Second review: a database that goes away during the run -----------------------------


def test_an_sqlite_file_deleted_during_the_run_stops_it(tmp_path, monkeypatch):
    db = tmp_path / "gone" / "tracker.db"
    folder = _articles(tmp_path / "in", 60)

    def respond(request):
        if len(fake.requests) == 5:  # the fifth answer: a colleague deletes the database
            for path in db.parent.glob("tracker.db*"):
                path.unlink()
        return first_sentence_claim(request)

    with FakeLLM(respond=respond, latency=0.05) as fake:
        settings = make_settings(f"sqlite:///{db}", openai_base_url=fake.base_url)
        result = _run(monkeypatch, settings, "import", str(folder), "-c", "2")
        sent = len(fake.requests)
    assert result.exit_code == 2, result.output  # was 0: "60 extracted" into a deleted file
    assert "Stopped early: the database cannot be written: the database file" in result.stderr
    assert "was deleted or replaced during the run" in result.stderr
    assert sent < 15  # not the whole folder paid for and lost
    assert "Traceback" not in result.output


class _Proxy:
    """A TCP proxy in front of PostgreSQL: `drop()` cuts every connection once (as a
    killed backend or a restart does), `go_away()` also refuses new ones (a server down)."""

    def __init__(self, host: str, port: int) -> None:
        import socket
        import threading

        self.target = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list = []
        self.refusing = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()

    def drop(self) -> None:
        import socket

        with self.lock:
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            self.sockets = []

    def go_away(self) -> None:
        self.refusing = True
        self.drop()

    def close(self) -> None:
        self.go_away()
        self.server.close()


def _through_proxy(db_url: str):
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    proxy = _Proxy(url.host or "127.0.0.1", url.port or 5432)
    return proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_one_dropped_postgresql_connection_loses_no_paid_claims(db_url, tmp_path, monkeypatch):
    import sqlalchemy as sa

    from tracker import ingest

    folder = _articles(tmp_path / "in", 3)
    real_lock, killed = ingest._lock, []

    def lock(session, article_id):  # the server kills the connection mid-store, once
        if not killed:
            killed.append(article_id)
            session.exec(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return real_lock(session, article_id)

    monkeypatch.setattr(ingest, "_lock", lock)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = make_settings(db_url, openai_base_url=fake.base_url)
        result = _run(monkeypatch, settings, "import", str(folder), "-c", "1", "--json")
        sent = len(fake.requests)
    summary = json.loads(result.stdout)
    assert killed and result.exit_code == 0, result.stderr
    assert summary["extracted"] == 3 and summary["claims"] == 3 and sent == 3


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_going_away_stops_the_run_with_one_reason(db_url, tmp_path, monkeypatch):
    get_engine(db_url)
    proxy, proxied = _through_proxy(db_url)
    folder = _articles(tmp_path / "in", 200)

    def respond(request):
        if len(fake.requests) == 10:
            proxy.go_away()
        return first_sentence_claim(request)

    try:
        with FakeLLM(respond=respond, latency=0.05) as fake:
            settings = make_settings(proxied, openai_base_url=fake.base_url)
            result = _run(monkeypatch, settings, "import", str(folder), "-c", "4")
            sent = len(fake.requests)
    finally:
        proxy.close()
    assert result.exit_code == 2, result.stderr  # was 1, with a line for every article
    assert result.stderr.count("Stopped early: the database cannot be written") == 1
    failed = result.stderr.split("Failed (", 1)[1].split(")", 1)[0]
    assert int(failed) < 20, result.stderr
    assert sent < 30
    assert "Traceback" not in result.output and "INSERT" not in result.output
