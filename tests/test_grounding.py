"""Grounding: a claim's quote must be in the article, and offsets come from our search."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tracker.grounding import ArticleIndex, normalise
from tracker.schemas import ExtractedClaim, WireClaim, normalise_claimant

ARTICLE = (
    "“Sending NATO peacekeepers to Ukraine would lead to a direct clash,” Lavrov said.\n\n"
    "Prices rose 7%\u00a0in March — the\n  fastest rise since 1982.\n\n"
    "Prices rose 7% in March, officials repeated."
)


@pytest.mark.parametrize(
    "typed",
    [
        '"Sending NATO peacekeepers to Ukraine would lead to a direct clash,"',
        "Sending NATO peacekeepers to Ukraine would lead to a direct clash",
        "Prices rose 7% in March - the fastest rise since 1982.",
        "Prices  rose 7% in\nMarch — the fastest rise since 1982",
    ],
)
def test_quotes_retyped_by_a_model_are_found_and_mapped_to_the_articles_words(typed):
    index = ArticleIndex(ARTICLE)
    start, end = index.locate(typed)
    found = ARTICLE[start:end]
    assert normalise(found).strip("\"'") == normalise(typed).strip("\"'")
    assert found == found.strip()  # never starts or ends in white space


def test_the_match_inside_the_chunk_is_preferred():
    index = ArticleIndex(ARTICLE)
    second = ARTICLE.rindex("Prices rose 7% in March")
    assert index.locate("Prices rose 7% in March")[0] == ARTICLE.index("Prices rose 7%")
    assert index.locate("Prices rose 7% in March", window=(second, len(ARTICLE)))[0] == second


@pytest.mark.parametrize(
    "quote",
    [
        "",
        "   \n ",
        "Prices rose",  # too short to stand for a claim
        "Prices rose 8% in March",
        "Sending NATO peacekeepers ... a direct clash",
    ],
)
def test_quotes_not_in_the_article_are_not_grounded(quote):
    assert ArticleIndex(ARTICLE).locate(quote) is None


def _claim(**wire) -> ExtractedClaim:
    values = {
        "quote": "the fastest rise since 1982",
        "claim": "Prices rose 7% in March, the fastest rise since 1982.",
        "claimant": None,
        "claim_type": "statistic",
        "checkworthiness": 0.8,
    }
    values.update(wire)
    return ExtractedClaim.from_wire(WireClaim(**values), ArticleIndex(ARTICLE))


def test_a_grounded_claim_gets_exact_offsets_from_our_code():
    claim = _claim(quote="the fastest rise\nsince 1982")
    assert ARTICLE[claim.quote_start : claim.quote_end] == claim.quote
    assert claim.quote == "the\n  fastest rise since 1982"


def test_an_ungrounded_claim_is_refused_with_a_reason():
    with pytest.raises(ValidationError, match="not in the article word for word"):
        _claim(quote="the slowest rise since 1982")
    with pytest.raises(ValidationError, match="quote is empty"):
        _claim(quote="  ")


def test_scores_outside_zero_to_one_are_refused():
    with pytest.raises(ValidationError, match="checkworthiness"):
        _claim(checkworthiness=8)


def test_the_domain_model_cannot_be_built_without_the_article():
    with pytest.raises(ValidationError, match="article as context"):
        ExtractedClaim.model_validate({"text": "x" * 10, "quote": "y", "checkworthiness": 0.5})


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Sergey   Lavrov ", "Sergey Lavrov"),
        ("“Lavrov”", "Lavrov"),
        ("Mr. Lavrov", "Lavrov"),
        ("null", None),
        ("The article", None),
        ("", None),
        ("NATO", "NATO"),
        ("\u202eLavrov\u202c", "Lavrov"),  # a bidirectional override would reorder the page
        ("Sergey\u2066 Lavrov\u2069", "Sergey Lavrov"),
    ],
)
def test_claimant_names_are_normalised(raw, clean):
    assert normalise_claimant(raw) == clean


def test_decomposed_accents_and_retyped_apostrophes_are_found():
    import unicodedata

    article = unicodedata.normalize(
        "NFD", "Le préfet a déclaré que les travaux étaient en retard. He said don´t panic."
    )
    index = ArticleIndex(article)
    start, end = index.locate("Le préfet a déclaré que les travaux")  # typed precomposed
    assert unicodedata.normalize("NFC", article[start:end]) == "Le préfet a déclaré que les travaux"
    start, end = index.locate("He said don't panic")
    assert article[start:end] == "He said don´t panic"


def test_a_quote_never_matches_inside_a_word():
    index = ArticleIndex("Taxes arose by ten percent last year.\r\nCosts rose by ten percent.")
    start, _ = index.locate("rose by ten percent")
    assert start == index.text.index("Costs rose") + len("Costs ")


def test_line_endings_and_tabs_do_not_break_offsets():
    article = "Officials said\r\nthe bridge\tcost $4m.\r\n\r\nIt opened in 2020."
    start, end = ArticleIndex(article).locate("the bridge cost $4m.")
    assert article[start:end] == "the bridge\tcost $4m."
