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
        ("The prime minister was arrested for fraud.", "does not say what its quote says"),
        ("Jobs at eBay fell by half.", "does not say what its quote says"),
    ],
)
def test_claims_the_quote_does_not_make_are_refused(claim, reason):
    assert reason in (unsupported(claim, QUOTE, QUOTE, CONTEXT) or "")
