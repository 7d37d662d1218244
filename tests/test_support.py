"""The claim-support check (tracker/support.py): faithful rewordings pass, claims the quote
does not make are refused with the reason. False drops at scale: bench/claim_support.py."""

from __future__ import annotations

import pytest

from tracker.support import unsupported

CONTEXT = (
    "State of the Union Address, 1996\n\n"
    "Our economy is the healthiest it has been in three decades. We have created nearly 8 "
    "million new jobs. America is selling more cars than Japan for the first time since the "
    "1970's. Jobs at companies like Google and eBay grew. Mr. Speaker, Mr. Vice President."
)
QUOTE = "We have created nearly 8 million new jobs."


@pytest.mark.parametrize(
    "claim",
    [
        "We have created nearly 8 million new jobs.",
        "The United States has created nearly 8 million new jobs.",  # "we", named
        "The President said the country created nearly 8 million new jobs.",  # a role
        "In 1996, the US had created nearly 8,000,000 new jobs.",  # the title's year; 8 million
        "America has created almost 8m new jobs.",
    ],
)
def test_faithful_rewordings_are_supported(claim):
    assert unsupported(claim, QUOTE, QUOTE, CONTEXT) is None


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ("We have created nearly 9 million new jobs.", "number 9 is not in the text"),
        ("We created 8 million new jobs on Monday.", 'date "Monday" is not in the text'),
        ("Senator Dole created nearly 8 million new jobs.", 'names "Dole"'),
        ("The prime minister was arrested for fraud.", 'adds "arrested"'),
        ("Jobs at eBay fell by half.", "does not say what its quote says"),
    ],
)
def test_claims_the_quote_does_not_make_are_refused(claim, reason):
    assert reason in (unsupported(claim, QUOTE, QUOTE, CONTEXT) or "")


# --- Second review: claims that turn their quote around, and fair restatements -----------

CITY = """Mayor Jane Holloway said on Tuesday that the city did not raise property taxes in 2023.

The police chief, Robert Kane, was cleared of all charges after a two-year investigation, the \
prosecutor said.

Unemployment fell to 3.1 percent in May, the lowest level since 1969, according to the Labor \
Department.

Russia and Ukraine signed a grain agreement in Istanbul on July 22, 2022.

The company reported revenue of $4.2 billion, up 12 percent from a year earlier."""
TAXES, KANE, JOBS, GRAIN, REVENUE = CITY.split("\n\n")


def _check(claim: str, quote: str) -> str | None:
    from tracker.support import paragraphs_around

    start = CITY.index(quote)
    near = paragraphs_around(CITY, start, start + len(quote))
    return unsupported(claim, quote, near, f"City news\n{CITY}")


@pytest.mark.parametrize(
    ("claim", "quote", "reason"),
    [
        ("Putin was cleared of all charges after a two-year investigation.", KANE,
         'names "Putin"'),  # the first word is a name too
        ("Zelensky cleared Robert Kane of all charges.", KANE, 'names "Zelensky"'),
        ("Unemployment fell to seven percent in May.", JOBS, "number seven is not"),
        ("Unemployment fell to 3.1 percent, the lowest in three hundred years.", JOBS,
         "number three hundred is not"),
        ("The city raised property taxes in 2023.", TAXES, 'leaves the "not" out'),
        ("Holloway is a criminal who raised property taxes in 2023.", TAXES, "not"),
        ("Unemployment never fell below 3.1 percent since 1969.", JOBS, 'says "not fell"'),
        ("Unemployment rose to 3.1 percent in May.", JOBS, 'says "rose" where its quote says'),
        ("Police chief Robert Kane was convicted of all charges after a two-year investigation.",
         KANE, 'says "convicted" where its quote says "cleared"'),
        ("The company reported revenue of $4.2 billion, down 12 percent.", REVENUE,
         'says "down" where its quote says "up"'),
        ("The company reported a loss of $4.2 billion.", REVENUE, 'says "loss"'),
        ("Unemployment fell to 3.1 percent in May, the lowest level since 1969, according to "
         "the Labor Department, which faked the data.", JOBS, 'adds "faked"'),
        ("Unemployment fell to 3.1 percent in May, lowest since 1969, and the Labor Department "
         "admitted fraud, bribery, corruption.", JOBS, 'adds "fraud"'),
        ("Unemployment fell to 3.1 percent in May, the lowest level since 1969, because the "
         "Labor Department changed its survey.", JOBS, "gives a cause"),
        ("Kane was arrested for fraud.", KANE, 'adds "arrested"'),
    ],
)  # fmt: skip
def test_claims_that_turn_their_quote_around_are_refused(claim, quote, reason):
    assert reason in (_check(claim, quote) or "no reason: supported")


@pytest.mark.parametrize(
    ("claim", "quote"),
    [
        ("Ukraine and Russia signed a grain agreement in Istanbul on 2022-07-22.", GRAIN),
        ("Russia and Ukraine signed a grain agreement in Istanbul on 22 July 2022.", GRAIN),
        ("The company reported revenue of $4,200 million, up 12 percent.", REVENUE),
        ("The company's revenue rose 12 percent to $4.2 billion.", REVENUE),
        ("Mayor Holloway said the city did not raise property taxes in 2023.", TAXES),
        ("The city did not raise property taxes in 2023, the mayor said.", TAXES),
        ("Robert Kane was cleared of all charges after a two-year investigation.", KANE),
        ("Unemployment fell to 3.1 percent in May, the lowest since 1969.", JOBS),
    ],
)
def test_fair_restatements_still_pass(claim, quote):
    assert _check(claim, quote) is None


def test_the_c_stemmer_gives_the_pure_python_stems():
    """The support check stems with snowballstemmer, which hands the work to PyStemmer (a
    C build of the same Snowball rules) when it is installed, as pyproject asks. A claim
    must get the same verdict either way."""
    import re

    import Stemmer
    from snowballstemmer.english_stemmer import EnglishStemmer

    from tests.conftest import ROOT
    from tracker.support import _stemmer

    assert isinstance(_stemmer(), Stemmer.Stemmer)  # the fast one is in use
    prose = [*sorted((ROOT / "data" / "articles").glob("*.txt")), ROOT / "README.md"]
    text = " ".join(p.read_text(encoding="utf-8") for p in prose) + (
        " generously running flies agreed happily mayor's ’s cannot N.A.T.O. naïve façade "
        "Zürich dying lying skies news communism organization relational conditional"
    )
    words = sorted({w.lower() for w in re.findall(r"[^\W\d_]+", text)})
    assert len(words) > 1000
    python = EnglishStemmer()
    assert [_stemmer().stemWord(w) for w in words] == [python.stemWord(w) for w in words]
