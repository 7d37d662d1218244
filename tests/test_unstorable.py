"""What a model server or a file can send that a database cannot store as it is (a NUL, half
a UTF-16 pair, a token count over 2^31, a name of thousands of characters): the article is
stored all the same, on SQLite and PostgreSQL, with its call log (second review of issue 12)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.fakellm import FakeLLM, claims_reply, completion, error, first_sentence_claim
from tracker.cli import app
from tracker.db import get_engine
from tracker.models import Article, Claim, FactCheck, ModelCall

TEXT = (
    "The unemployment rate fell to 3.1 percent in May, the Labor Department said on Friday.\n\n"
    "The city spent 4 million dollars on new buses last year, according to the mayor."
)
JOBS = "The unemployment rate fell to 3.1 percent in May"
BUSES = "The city spent 4 million dollars on new buses last year"


def _import(monkeypatch, tmp_path, db_url, reply, *args):
    (tmp_path / "a.txt").write_text(TEXT)
    with FakeLLM(respond=lambda _request: reply) as fake:
        settings = make_settings(db_url, openai_base_url=fake.base_url, max_reasks=0)
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        result = CliRunner().invoke(app, ["import", str(tmp_path / "a.txt"), "--json", *args])
        sent = len(fake.requests)
    with Session(get_engine(db_url)) as session:
        article = session.exec(select(Article)).one()
        calls = session.exec(select(ModelCall)).all()
        claims = session.exec(select(Claim).order_by(Claim.quote_start)).all()
    return result, sent, article, calls, claims


@pytest.mark.parametrize(
    ("reply", "state"),
    [
        (completion(None, refusal="no\u0000way"), "failed"),
        (error(400, "bad\u0000request"), "failed"),
        (completion(json.dumps({"claims": []}), finish_reason="stop\u0000"), "extracted"),
        (claims_reply({"quote": JOBS, "claim": JOBS + "."}, prompt_tokens=3_000_000_000),
         "extracted"),
    ],
    ids=["refusal", "error-body", "finish-reason", "tokens"],
)  # fmt: skip
def test_a_server_answer_with_a_nul_or_a_huge_count_is_logged_and_stored(
    db_url, tmp_path, monkeypatch, reply, state
):
    result, sent, article, calls, claims = _import(monkeypatch, tmp_path, db_url, reply)
    assert article.extraction_state == state, result.stderr  # not left pending, paid again
    assert len(calls) == sent == 1
    stored = " ".join(str(v) for v in calls[0].model_dump().values())
    assert "\x00" not in stored and "\x00" not in (article.extraction_error or "")
    if state == "extracted" and claims:
        assert calls[0].prompt_tokens is None and calls[0].completion_tokens == 300


def test_half_a_utf16_pair_in_an_answer_is_stored_replaced(db_url, tmp_path, monkeypatch):
    content = json.dumps({"claims": [
        {"quote": JOBS, "claim": JOBS + " \ud800.", "claimant": "Labor Department",
         "claim_type": "statistic", "checkworthiness": 0.9},
        {"quote": BUSES, "claim": BUSES + ".", "claimant": "the mayor \udc00",
         "claim_type": "event", "checkworthiness": 0.6},
    ]})  # fmt: skip
    result, sent, article, calls, claims = _import(
        monkeypatch, tmp_path, db_url, completion(content)
    )
    assert result.exit_code == 0, result.stderr
    assert article.extraction_state == "extracted" and len(calls) == sent == 1
    assert [c.text for c in claims] == [JOBS + " \ufffd.", BUSES + "."]
    assert claims[1].claimant == "the mayor \ufffd"


def test_a_claimant_of_thousands_of_characters_is_cut(db_url, tmp_path, monkeypatch):
    long_name = " ".join(["Alexandria"] * 600)  # 6,600 characters: over PostgreSQL's index limit
    reply = claims_reply(
        {"quote": JOBS, "claim": JOBS + ".", "claimant": "Labor Department"},
        {"quote": BUSES, "claim": BUSES + ".", "claimant": long_name},
    )
    result, _, article, _, claims = _import(monkeypatch, tmp_path, db_url, reply)
    assert result.exit_code == 0, result.stderr
    assert article.extraction_state == "extracted" and len(claims) == 2
    assert len(claims[1].claimant) <= 201 and claims[1].claimant.startswith("Alexandria")


def test_an_outlet_too_long_to_index_is_cut_with_a_warning(db_url, tmp_path, monkeypatch):
    outlet = "新聞" * 995  # 1,990 characters, 5,970 bytes: under the 2,000-character limit
    (tmp_path / "a.json").write_text(json.dumps({"text": TEXT, "outlet": outlet}))
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = make_settings(db_url, openai_base_url=fake.base_url)
        monkeypatch.setattr("tracker.cli.get_settings", lambda: settings)
        result = CliRunner().invoke(app, ["import", str(tmp_path / "a.json"), "--json"])
    assert result.exit_code == 0, result.stderr
    assert "outlet cut to its first 200 characters" in result.stderr
    with Session(get_engine(db_url)) as session:
        article = session.exec(select(Article)).one()
    assert article.extraction_state == "extracted" and article.outlet == outlet[:200]


def test_fact_checks_with_half_a_utf16_pair_or_a_nul_are_imported(db_url, tmp_path, monkeypatch):
    (tmp_path / "fc.jsonl").write_text(
        json.dumps({"@type": "ClaimReview", "claimReviewed": "\ud800 lone", "url": "https://a.org/1",
                    "reviewRating": {"alternateName": "False"}}) + "\n"
        + json.dumps({"@type": "ClaimReview", "claimReviewed": "Taxes rose 4%.",
                      "url": "https://a.org/2", "author": {"name": "a\u0000b"}}) + "\n"
    )  # fmt: skip
    monkeypatch.setattr("tracker.cli.get_settings", lambda: make_settings(db_url))
    result = CliRunner().invoke(app, ["import-factchecks", str(tmp_path / "fc.jsonl")])
    assert result.exit_code == 0, result.output
    assert "2 fact-checks added" in result.stderr and "Traceback" not in result.output
    with Session(get_engine(db_url)) as session:
        stored = {f.claim_reviewed: f.organisation for f in session.exec(select(FactCheck))}
    assert stored == {"\ufffd lone": None, "Taxes rose 4%.": "ab"}
