"""What a model's answer can do to an extraction (second review of issue 12): a cut-off
re-ask, thousands of claims, absurd numbers, odd values repeated on every re-ask. Each costs
only its own claims, and what was validated is kept. Through the loopback server and the
real SDK (tests/fakellm.py)."""

from __future__ import annotations

import asyncio
import json
import re
import time

from tests.conftest import make_settings
from tests.fakellm import FakeLLM, article_text, claims_reply, completion
from tracker.extract import extract_claims
from tracker.llm import ModelClient

SENTENCES = [
    f"In {1990 + i} the city of Springfield opened {i + 3} new public libraries, officials said."
    for i in range(32)
]
TEXT = " ".join(SENTENCES)
JOBS = "The unemployment rate fell to 3.1 percent in May"
SHORT = f"{JOBS}, the Labor Department said on Friday."


def _extract(respond, text: str = TEXT, **values):
    async def run():
        client = ModelClient(settings, concurrency=1)
        try:
            return await extract_claims(text, title="News", client=client, settings=settings)
        finally:
            await client.close()

    with FakeLLM(respond=respond) as fake:
        settings = make_settings("sqlite://", openai_base_url=fake.base_url, max_retries=0,
                                 response_format="json_schema", **values)  # fmt: skip
        result = asyncio.run(run())
        return result, fake.requests


def test_a_cut_off_reask_keeps_the_claims_already_validated():
    def respond(request):
        if len(request["messages"]) > 2:  # the re-ask about the invented claim: cut off
            return completion('{"claims": [', finish_reason="length")
        first = re.split(r"(?<=[.!?])\s", article_text(request).strip())[0]
        return claims_reply(
            {"quote": first, "claim": first},
            {"quote": "not in the article at all", "claim": "Invented here."},
        )

    result, requests = _extract(respond)
    assert [c.quote for c in result.claims] == [SENTENCES[0]]  # was: none, article failed
    assert result.dropped == 1 and "cut off" in result.drop_reasons[0]
    assert len(requests) == 2


def test_odd_values_repeated_on_every_reask_are_dropped_once():
    bad = [None, 7, "str", [], {"quote": JOBS, "claim": 12345}, {"quote": 42, "claim": JOBS},
           {"quote": JOBS, "claim": JOBS, "claimant": ["a"]}]  # fmt: skip
    result, requests = _extract(lambda _r: completion(json.dumps({"claims": bad})), SHORT)
    assert len(requests) == 3  # the first ask and two re-asks, each answered the same
    assert result.dropped == len(bad)  # was 20 for 12: counted again on each re-ask


def test_a_score_of_thousands_of_digits_costs_only_its_claim():
    answer = (
        '{{"claims": [{{"quote": "{}", "claim": "{}.", "claimant": null, "claim_type": "statistic",'
        ' "checkworthiness": 0.9}}, {{"quote": "{}", "claim": "{}", "claimant": null, '
        '"claim_type": "event", "checkworthiness": {}}}]}}'
    ).format(JOBS, JOBS, SHORT, SHORT, "9" * 5000)
    result, _ = _extract(lambda _r: completion(answer), SHORT)
    assert [c.text for c in result.claims] == [JOBS + "."]  # was: unreadable, article failed
    assert result.dropped == 1 and "checkworthiness" in result.drop_reasons[0]


def test_thousands_of_unusable_claims_make_a_small_reask():
    bad = [{"quote": f"not in the article {i}", "claim": f"Invented claim number {i}."}
           for i in range(5_000)]  # fmt: skip
    result, requests = _extract(lambda _r: claims_reply(*bad), SHORT)
    sizes = [len(json.dumps(r)) for r in requests]
    assert max(sizes[1:]) < 5 * sizes[0] + 20_000, sizes  # was 1.65 MB
    assert result.dropped == 5_000


def test_twenty_thousand_claims_in_one_answer_are_bounded():
    many = [{"quote": JOBS, "claim": f"{JOBS}."}] * 20_000
    started = time.monotonic()
    result, _ = _extract(lambda _r: claims_reply(*many), SHORT)
    assert time.monotonic() - started < 60  # was 133 s of validation
    assert len(result.claims) == 1 and result.dropped == 20_000 - 300
    assert "more than 300 claims in one answer" in result.drop_reasons[0]
