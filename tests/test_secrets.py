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
