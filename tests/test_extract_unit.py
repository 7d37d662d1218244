"""Pieces of extraction that need no model: chunking, the wire schema, merging, scrubbing."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import SAMPLE
from tracker.chunking import split_into_chunks
from tracker.extract import parse_answer
from tracker.grounding import ArticleIndex
from tracker.llm import scrub
from tracker.results import merge_claims
from tracker.schemas import ExtractedClaim, WireClaim, response_schema

TEXT = SAMPLE.read_text(encoding="utf-8")


def _paragraphs(n: int, size: int) -> str:
    return "\n\n".join(f"Paragraph {i}. " + "word " * (size // 5) for i in range(n))


@pytest.mark.parametrize(("max_chars", "overlap"), [(500, 0), (800, 200), (3000, 600)])
def test_chunks_cover_the_article_in_order_within_the_limit(max_chars, overlap):
    text = _paragraphs(40, 180)
    chunks = split_into_chunks(text, max_chars, overlap)
    assert all(len(c.text) <= max_chars and c.text == text[c.start : c.end] for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start  # always forward
        assert text[before.end : after.start].strip() == ""  # nothing but white space skipped
        assert before.end - after.start <= overlap


def test_chunks_are_cut_between_paragraphs():
    text = _paragraphs(12, 300)
    for chunk in split_into_chunks(text, 1000, 0):
        assert chunk.text.startswith("Paragraph")


def test_a_paragraph_longer_than_a_chunk_is_cut_between_sentences():
    text = " ".join(f"Sentence number {i} says something." for i in range(200))
    chunks = split_into_chunks(text, 1000, 0)
    assert len(chunks) > 5
    assert all(c.text.rstrip().endswith(".") for c in chunks)
    assert "".join(text[c.start : c.end] for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_a_short_article_is_one_chunk():
    assert [(c.start, c.end) for c in split_into_chunks(TEXT, 12_000, 1000)] == [(0, len(TEXT))]


def _objects(schema: dict) -> list[dict]:
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            found.append(schema)
        for value in schema.values():
            found.extend(_objects(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_objects(value))
    return found


def test_the_wire_schema_is_valid_for_strict_structured_outputs():
    objects = _objects(response_schema())
    assert len(objects) == 2
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert set(obj["required"]) == set(obj["properties"])
    assert "minimum" not in str(response_schema())  # no constraint a server may not know


def test_answers_in_a_code_fence_are_read():
    answer = parse_answer('```json\n{"claims": []}\n```')
    assert answer.claims == []
    with pytest.raises(ValueError, match="empty"):
        parse_answer("  ")


def _claim(quote: str, text: str, score: float, claimant: str | None = None) -> ExtractedClaim:
    wire = WireClaim(
        quote=quote, claim=text, claimant=claimant, claim_type="event", checkworthiness=score
    )
    return ExtractedClaim.from_wire(wire, ArticleIndex(TEXT))


def test_duplicates_are_merged_keeping_the_best_score_and_a_claimant():
    quote = "The president has been very clear that we will not put American troops"
    claims = merge_claims(
        [
            _claim(quote, "The US will not put American troops on the ground in Ukraine.", 0.6),
            _claim(
                quote,
                "The US will not put troops on the ground in Ukraine, Biden said.",
                0.8,
            ),
            _claim(
                quote, "The US will not put American troops on the ground in Ukraine.", 0.5, "Biden"
            ),
        ]
    )
    assert len(claims) == 1
    assert claims[0].checkworthiness == 0.8 and claims[0].claimant == "Biden"


def test_different_claims_in_one_sentence_stay_apart():
    quote = "The U.S. will not participate but may agree to a mission involving some other"
    claims = merge_claims(
        [
            _claim(quote, "The United States will not take part in a Ukraine peace mission.", 0.6),
            _claim(quote, "Washington may agree to other countries sending peacekeepers.", 0.6),
        ]
    )
    assert len(claims) == 2


def test_short_claimant_names_take_the_full_name_used_elsewhere_in_the_article():
    quote_a = "Lavrov’s warning suggests that Russia would consider the presence"
    quote_b = "The war has dragged on for about a month"
    claims = merge_claims(
        [
            _claim(
                quote_a, "Lavrov warned NATO peacekeepers would be a cause of war.", 0.6, "Lavrov"
            ),
            _claim(quote_b, "Sergey Lavrov said the war has lasted a month.", 0.4, "Sergey Lavrov"),
        ]
    )
    assert {c.claimant for c in claims} == {"Sergey Lavrov"}


def test_secrets_are_scrubbed_from_messages():
    fake_key = "sk-" + "live-secret"  # (built at run time: no key-shaped literal in the repo)
    message = f"Incorrect API key provided: sk-proj-abc123XYZ****7890. Bearer {fake_key}"
    cleaned = scrub(message + " my-own-token", ["my-own-token"])
    assert "sk-proj" not in cleaned and "sk-live" not in cleaned and "my-own-token" not in cleaned
    assert cleaned.startswith("Incorrect API key provided: [redacted]")


def test_consecutive_chunks_really_overlap_on_whole_sentences():
    text = " ".join(f"Sentence {i} reports {i * 3} new cases in the region." for i in range(300))
    chunks = split_into_chunks(text, 2000, 400)
    for before, after in itertools.pairwise(chunks):
        shared = before.end - after.start
        assert 0 < shared <= 400
        assert after.text.startswith("Sentence")


def test_an_overlap_above_half_a_chunk_is_refused():
    from pydantic import ValidationError

    from tracker.config import Settings

    with pytest.raises(ValidationError, match="at most half"):
        Settings(_env_file=None, chunk_chars=12_000, chunk_overlap_chars=20_000)


def test_control_characters_never_reach_the_database():
    claim = _claim(
        "The war has dragged on for about a month", "The war\x00 has lasted\x07 a month.", 0.5
    )
    assert claim.text == "The war has lasted a month."


def test_what_is_printed_cannot_drive_the_terminal():
    from tracker.sanitize import printable

    title = "\x1b[2J\x1b]0;pwned\x07Bridge \x1b[31mreport\x1b[0m \u202eevil\u202c\x9b1m\tok"
    assert printable(title) == "Bridge report evil\tok"
