"""The API key never reaches the database or the screen (issue 12), whatever the server
sends back: every stored and printed string goes through `tracker.sanitize.scrub`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.fakellm import FakeLLM, Reply, claims_reply, completion, error, every
from tests.test_import_batch import _articles
from tracker.cli import app

# Not shaped like an OpenAI key, so only the configured secret can find it.
KEY = "local-Secret-QK7x9f8e7d6c5b4a"


def _echoing_the_key(kind: str):
    """A server that puts the key in its answers, the way `kind` says."""

    def respond(body) -> Reply:
        if kind == "reask":  # an unusable claim: the re-ask carries this answer back
            return claims_reply({"quote": f"not in the article {KEY}", "claim": f"Key {KEY}."})
        if kind == "length":
            return completion(f'{{"claims": [{{"quote": "{KEY}', finish_reason="length")
        if kind == "refusal":
            return completion(None, refusal=f"I cannot use the key {KEY}.")
        if kind == "error-body":
            return error(400, f"Invalid request for key {KEY}")
        if kind == "unreadable":
            return completion(f"Here is your key: {KEY}")
        return claims_reply({"quote": "Officials said", "claim": f"Officials said {KEY}."})

    return respond


KINDS = ["reask", "length", "refusal", "error-body", "unreadable",
         "429", "500", "timeout", "truncated", "invalid", "drop"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_the_key_is_nowhere_in_the_database_file_or_the_output(tmp_path, monkeypatch, kind):
    folder = _articles(tmp_path / "in", 4)
    fault = every(2, kind) if kind.isdigit() or kind in {"timeout", "truncated", "invalid",
                                                           "drop"} else None  # fmt: skip
    db = tmp_path / "secret.db"
    with FakeLLM(respond=_echoing_the_key(kind), fault=fault, timeout_after=1.5) as fake:
        settings = make_settings(
            f"sqlite:///{db}", openai_base_url=fake.base_url, openai_api_key=KEY,
            max_retries=1, request_timeout=1.0, max_reasks=1,
        )  # fmt: skip
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        result = CliRunner().invoke(app, ["import", str(folder), "-c", "2", "--json"])
        assert fake.requests
    summary = json.loads(result.stdout)
    assert summary["articles"] == 4
    stored = b"".join(p.read_bytes() for p in Path(tmp_path).glob("secret.db*"))
    assert KEY.encode() not in stored
    assert KEY not in result.output
    assert b"[redacted]" in stored or kind in {"429", "500", "timeout", "truncated", "invalid",
                                               "drop"}  # fmt: skip


# --- Second review: placeholders, encoded secrets, a key in the base URL ------------------


@pytest.mark.parametrize("placeholder", ["none", "EMPTY", "ollama", "lm-studio"])
def test_a_placeholder_key_is_no_secret_to_scrub_from_articles(tmp_path, monkeypatch, placeholder):
    text = ("The mayor said none of the 40 new buses had been delivered, the EMPTY depot "
            "too, and the ollama and lm-studio teams agreed.")  # fmt: skip
    (tmp_path / "a.txt").write_text(text)
    with FakeLLM(respond=lambda _r: claims_reply({"quote": text, "claim": text})) as fake:
        settings = make_settings(f"sqlite:///{tmp_path / 't.db'}", openai_base_url=fake.base_url,
                                 openai_api_key=placeholder)  # fmt: skip
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        result = CliRunner().invoke(app, ["import", str(tmp_path / "a.txt")])
        exported = CliRunner().invoke(app, ["export"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(exported.stdout)["text"] == text  # was "... said [redacted] of the 40"


def test_a_key_the_server_writes_with_json_escapes_is_scrubbed(tmp_path, monkeypatch):
    escaped = "".join(f"\\u{ord(c):04x}" if i % 3 == 0 else c for i, c in enumerate(KEY))
    body = ('{"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": '
            f'[{{"index": 0, "message": {{"role": "assistant", "content": "not json {escaped}"}}, '
            '"finish_reason": "stop"}]}')  # fmt: skip
    (tmp_path / "a.txt").write_text("Officials said 4 bridges need repairs.")
    with FakeLLM(respond=lambda _r: Reply(body=body)) as fake:
        settings = make_settings(f"sqlite:///{tmp_path / 'secret.db'}", max_reasks=0,
                                 openai_base_url=fake.base_url, openai_api_key=KEY)  # fmt: skip
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        CliRunner().invoke(app, ["import", str(tmp_path / "a.txt")])
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("secret.db*"))
    assert escaped.encode() not in stored and b"[redacted]" in stored


class _Echo:
    """A server that answers 400 with the path and headers it was sent (as some do)."""

    def __enter__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                message = f"bad path {self.path} headers {dict(self.headers)}"
                body = json.dumps({"error": {"message": message}}).encode()
                self.send_response(400)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.shutdown()


def test_the_base_urls_user_password_and_query_stay_secret_and_work(tmp_path, monkeypatch):
    import base64

    user, password, query = "USERKEYab12cd34ef", "PASSWORDzq9Xw7Vt5", "QUERYSECRET1234"
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    (tmp_path / "a.txt").write_text("Officials said 4 bridges need repairs.")
    with _Echo() as where:
        url = f"http://{user}:{password}@{where}/v1?api-key={query}"
        settings = make_settings(f"sqlite:///{tmp_path / 'secret.db'}", openai_base_url=url,
                                 openai_api_key=KEY, max_retries=0)  # fmt: skip
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        result = CliRunner().invoke(app, ["import", str(tmp_path / "a.txt")])
        stats = CliRunner().invoke(app, ["stats"])
    shown = result.output + stats.output
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("secret.db*")).decode("latin-1")
    assert "bad path /v1/chat/completions?api-key=[redacted] " in shown  # not /v1/?api-key=
    for secret in (user, password, query, basic):
        assert secret not in shown and secret not in stored, secret
