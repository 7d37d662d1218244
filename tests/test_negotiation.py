"""Structured-output negotiation with servers that speak other dialects (issue 7)."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from tests.conftest import SAMPLE, make_settings
from tests.fakellm import FakeLLM, Reply, error, first_sentence_claim
from tracker import llm
from tracker.db import get_engine
from tracker.ingest import import_article
from tracker.models import ArticleCreate, Claim, ModelCall

TEXT = SAMPLE.read_text(encoding="utf-8")
LLAMA_CPP_REFUSAL = (
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
    "  Input should be 'text' or 'json_object' [type=literal_error, input_value='json_schema']"
)


def like_llama_cpp_python(request: dict) -> Reply:
    """Refuses `json_schema` the way llama-cpp-python's server does; takes json_object."""
    if request.get("response_format", {}).get("type") == "json_schema":
        return error(500, LLAMA_CPP_REFUSAL)
    return first_sentence_claim(request)


def only_prompted_json(request: dict) -> Reply:
    """A server that takes no response_format at all."""
    if "response_format" in request:
        return error(400, "Unrecognized request argument supplied: response_format")
    return first_sentence_claim(request)


def _import(settings, text: str):
    return import_article(get_engine(settings.database_url), ArticleCreate(text=text), settings)


def _calls(settings) -> list[ModelCall]:
    with Session(get_engine(settings.database_url)) as session:
        return list(session.exec(select(ModelCall).order_by(ModelCall.id)).all())


def _settings(tmp_path, fake, **values):
    llm._NEGOTIATED.clear()  # what this process learnt from other tests' servers
    return make_settings(
        f"sqlite:///{tmp_path / 'n.db'}", openai_base_url=fake.base_url, max_retries=0, **values
    )


def test_a_server_refusing_json_schema_gets_json_object_with_the_schema(tmp_path):
    with FakeLLM(respond=like_llama_cpp_python) as fake:
        settings = _settings(tmp_path, fake)
        engine = get_engine(settings.database_url)
        first = import_article(engine, ArticleCreate(text=TEXT), settings)
        second = _import(settings, "Officials said 9 bridges are unsafe.")
    assert first.state == second.state == "extracted"
    calls = _calls(settings)
    assert [(c.response_format, c.status_code) for c in calls] == [
        ("json_schema", 500),  # refused once...
        ("json_object", 200),
        ("json_object", 200),  # ...and remembered for the next article
    ]
    assert "refused response_format json_schema" in calls[0].error
    sent = json.loads(calls[1].request)["response_format"]
    assert sent["type"] == "json_object" and sent["schema"]["required"] == ["claims"]


def test_what_worked_is_remembered_across_runs(tmp_path):
    with FakeLLM(respond=like_llama_cpp_python) as fake:
        settings = _settings(tmp_path, fake)
        engine = get_engine(settings.database_url)
        import_article(engine, ArticleCreate(text=TEXT), settings)
        llm._NEGOTIATED.clear()  # a new process: only the call log remembers
        import_article(engine, ArticleCreate(text="Officials said 9 bridges are unsafe."), settings)
        assert len(fake.requests) == 3  # no second refusal


def test_a_server_with_no_structured_output_gets_the_schema_in_the_prompt(tmp_path):
    with FakeLLM(respond=only_prompted_json) as fake:
        settings = _settings(tmp_path, fake)
        outcome = _import(settings, TEXT)
        last = fake.requests[-1]
    assert outcome.state == "extracted" and outcome.claims == 1
    assert [c.response_format for c in _calls(settings)] == ["json_schema", "json_object", "prompt"]
    assert "response_format" not in last
    assert '"required":["claims"]' in last["messages"][0]["content"]


def test_a_setting_forces_the_mode(tmp_path):
    with FakeLLM(respond=like_llama_cpp_python) as fake:
        settings = _settings(tmp_path, fake, response_format="json_object")
        import_article(get_engine(settings.database_url), ArticleCreate(text=TEXT), settings)
        assert fake.requests[0]["response_format"]["type"] == "json_object"
    with FakeLLM(respond=like_llama_cpp_python) as fake:
        forced = _settings(tmp_path, fake, response_format="json_schema")
        outcome = import_article(
            get_engine(forced.database_url), ArticleCreate(text="Taxes rose 4% in May."), forced
        )
    assert outcome.state == "failed" and "HTTP 500" in outcome.error  # forced: no fallback


def test_other_server_errors_do_not_change_the_format(tmp_path):
    with FakeLLM(respond=lambda _r: error(500, "CUDA out of memory")) as fake:
        settings = _settings(tmp_path, fake)
        outcome = _import(settings, TEXT)
    assert outcome.state == "failed"
    assert {c.response_format for c in _calls(settings)} == {"json_schema"}
    with Session(get_engine(settings.database_url)) as session:
        assert session.exec(select(Claim)).all() == []


def test_a_forced_mode_run_does_not_pin_a_weaker_format(tmp_path):
    with FakeLLM(respond=first_sentence_claim) as fake:
        forced = _settings(tmp_path, fake, response_format="prompt")
        _import(forced, TEXT)
        llm._NEGOTIATED.clear()
        auto = forced.model_copy(update={"response_format": "auto"})
        _import(auto, "Officials said 9 bridges are unsafe.")
        assert fake.requests[-1]["response_format"]["type"] == "json_schema"


def test_an_error_that_merely_mentions_text_is_not_a_format_refusal(tmp_path):
    with FakeLLM(respond=lambda _r: error(500, "upstream error: 'text' field missing")) as fake:
        settings = _settings(tmp_path, fake)
        _import(settings, TEXT)
    assert {c.response_format for c in _calls(settings)} == {"json_schema"}


def test_a_format_refusal_costs_one_request_not_the_sdks_retries(tmp_path):
    """llama-cpp-python refuses json_schema with HTTP 500, which the SDK would retry with
    back-off (7 s with the default 2 retries) before negotiation could step down."""
    llm._NEGOTIATED.clear()
    with FakeLLM(respond=like_llama_cpp_python) as fake:
        settings = make_settings(
            f"sqlite:///{tmp_path / 'n.db'}", openai_base_url=fake.base_url, max_retries=2
        )
        outcome = _import(settings, TEXT)
        formats = [r.get("response_format", {}).get("type") for r in fake.requests]
    assert outcome.state == "extracted"
    assert formats == ["json_schema", "json_object"]


def test_a_first_request_that_fails_for_other_reasons_keeps_its_retries(tmp_path):
    llm._NEGOTIATED.clear()
    flaky = lambda n, _body: "500" if n <= 2 else None  # noqa: E731
    with FakeLLM(respond=first_sentence_claim, fault=flaky) as fake:
        settings = make_settings(
            f"sqlite:///{tmp_path / 'n.db'}", openai_base_url=fake.base_url, max_retries=2
        )
        outcome = _import(settings, TEXT)
        formats = [r.get("response_format", {}).get("type") for r in fake.requests]
    assert outcome.state == "extracted"
    assert formats == ["json_schema"] * 3  # 1 + TRACKER_MAX_RETRIES tries, as before
