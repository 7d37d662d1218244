"""Shared fixtures: databases on SQLite and PostgreSQL, settings, and recorded model calls.

Recorded model calls (cassettes under tests/cassettes/) replay through the real openai
SDK and httpx2, matched on method, path and JSON body (minus the model name): an edited
prompt, schema or chunking changes the body and fails loudly instead of replaying a stale
answer. How to record them again is in tests/README.md.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from vcr.serializers import yamlserializer

from tests.fakellm import FakeLLM, Reply
from tracker import config
from tracker.config import Settings
from tracker.db import create_db_engine, migrate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "articles" / "nato-peacekeepers-lavrov.txt"
TEST_KEY = "sk-test-not-a-real-key-0000"
REPLAY_BASE_URL = "http://llm.invalid/v1"
SCRUBBED_HEADERS = [
    "host",  # the recording server's address: noise in diffs
    "authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "openai-organization",
    "openai-project",
]
SCRUBBED_RESPONSE_HEADERS = {"set-cookie", "openai-organization", "openai-project", "x-request-id"}


# --- Databases ------------------------------------------------------------------------


def _postgres_admin_url() -> str | None:
    return os.environ.get("TRACKER_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: SQLite always, PostgreSQL when a server is given."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tracker.db'}"
        return
    admin_url = _postgres_admin_url()
    if not admin_url:
        pytest.skip("no PostgreSQL server: set TRACKER_TEST_POSTGRES_URL (.ci/run does)")
    name = f"tracker_test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


# --- Settings -------------------------------------------------------------------------


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings that ignore the developer's environment and .env, so tests are repeatable."""
    values: dict[str, object] = {
        "database_url": database_url,
        "openai_api_key": TEST_KEY,
        "openai_base_url": REPLAY_BASE_URL,
        "model": "gpt-4.1-mini",
        "temperature": 0.0,
        "max_output_tokens": 4096,
        "chunk_chars": 12_000,
        "chunk_overlap_chars": 1_000,
        "max_reasks": 2,
        "max_retries": 2,
        "request_timeout": 30.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's real configuration or writes their database."""
    for name in list(os.environ):
        if name.startswith(("TRACKER_", "OPENAI_")) and name != "TRACKER_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{tmp_path / 'default.db'}")
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


# --- Recorded model calls -------------------------------------------------------------

_cassette_note: list[str] = []


class AnnotatedYaml:
    """vcrpy's YAML serializer, plus a header saying where a recording came from."""

    @staticmethod
    def deserialize(text: str) -> dict:
        return yamlserializer.deserialize(text)

    @staticmethod
    def serialize(cassette: dict) -> str:
        header = "".join(f"# {line}\n" for line in _cassette_note)
        return header + yamlserializer.serialize(cassette)


def _json_body_matcher(r1, r2) -> None:
    """Equal JSON bodies, ignoring the model name (so any model's recording replays)."""

    def load(request):
        body = request.body or b"{}"
        data = json.loads(body.decode() if isinstance(body, bytes) else body)
        data.pop("model", None)
        return data

    assert load(r1) == load(r2), "request body differs from the recording"


_KEY_SHAPE = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")


def _scrub_body(text: str) -> str:
    """Remove a real key a server echoed back (a 401 does); the tests' fake key stays, as
    the tests check that the application itself never shows it."""
    for name in ("TRACKER_RECORD_API_KEY", "OPENAI_API_KEY"):
        if os.environ.get(name):
            text = text.replace(os.environ[name], "[redacted]")
    return _KEY_SHAPE.sub(lambda m: m[0] if m[0] == TEST_KEY else "[redacted]", text)


def _scrub_response(response: dict) -> dict:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SCRUBBED_RESPONSE_HEADERS:
            del headers[name]
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes):
        response["body"]["string"] = _scrub_body(body.decode("utf-8", "replace")).encode()
    elif isinstance(body, str):
        response["body"]["string"] = _scrub_body(body)
    return response


def pytest_recording_configure(config: pytest.Config, vcr) -> None:
    vcr.register_serializer("yaml", AnnotatedYaml)  # replaces the plain one
    vcr.register_matcher("json_body", _json_body_matcher)


@pytest.fixture(scope="module")
def vcr_config() -> dict:
    return {
        "serializer": "yaml",
        "match_on": ["method", "path", "json_body"],
        "filter_headers": SCRUBBED_HEADERS,
        "before_record_response": _scrub_response,
        "decode_compressed_response": True,
    }


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    """One cassette per test function, shared by its SQLite and PostgreSQL runs."""
    return request.node.originalname


@pytest.fixture
def llm_settings(
    request: pytest.FixtureRequest, record_mode: str, db_url: str
) -> Iterator[Settings]:
    """Settings for a test that replays a cassette.

    Replaying (the default), requests never leave the process. Recording
    (`--record-mode=rewrite`): with TRACKER_RECORD_BASE_URL (and OPENAI_API_KEY,
    TRACKER_RECORD_MODEL as needed) a real server answers; without it, the scripted
    replies of the test's `llm_replies` marker do, and the cassette says it is hand-written.
    """
    overrides = getattr(request.node.get_closest_marker("llm_settings"), "kwargs", {})
    _cassette_note.clear()  # (the cassette is written after this fixture's teardown)
    if record_mode == "none":
        yield make_settings(db_url, **overrides)
        return
    real_url = os.environ.get("TRACKER_RECORD_BASE_URL")
    if real_url:
        model = os.environ.get("TRACKER_RECORD_MODEL", "gpt-4.1-mini")
        _cassette_note[:] = [f"Recorded from {model} on {date.today().isoformat()}."]
        key = os.environ.get("TRACKER_RECORD_API_KEY") or "unused"
        yield make_settings(
            db_url, openai_base_url=real_url, openai_api_key=key, model=model, **overrides
        )
        return
    marker = request.node.get_closest_marker("llm_replies")
    if marker is None:  # this test makes no model call
        yield make_settings(db_url, **overrides)
        return
    replies: list[Reply] = list(marker.args)
    _cassette_note[:] = [
        "HAND-WRITTEN: the model's answers in this file were written by hand (see the",
        f"test's llm_replies marker in {request.node.nodeid.split('::')[0]}), served by",
        "tests/fakellm.py and recorded through the real openai SDK. Not a real model's output.",
    ]
    with FakeLLM(replies) as fake:
        yield make_settings(db_url, openai_base_url=fake.base_url, **overrides)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llm_replies(*replies): scripted answers for recording")
    config.addinivalue_line("markers", "llm_settings(**values): settings for a recorded test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When recording, record each cassette once (from the SQLite run): the PostgreSQL run of
    the same test shares the cassette, and a rewrite by a skipped run would erase it."""
    if (config.getoption("--record-mode", default=None) or "none") == "none":
        return
    keep, drop = [], []
    for item in items:
        shared = item.get_closest_marker("vcr") and "[postgresql" in item.nodeid
        (drop if shared else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test, so fixtures can tell a failed test (the
    browser tests keep a screenshot of the page it failed on)."""
    outcome = yield
    setattr(item, f"report_{call.when}", outcome.get_result())
