"""Is a claim supported by its quote? Grounding proves the quote is the article's; this
checks that the claim says what the quote (and the text around it) says.

A model, or a prompt injection in the article, can pair a real sentence with an invented
claim ("The prime minister was arrested for fraud on Monday."). A reviewer reads the claim,
not always the quote, so such a claim must not be stored. The test is deliberately lexical
and lenient, so that a faithful rewording passes (pronouns replaced by names, a time frame
added, the sentence made standalone):

- every number, date word (month, weekday) and name in the claim occurs in the text the
  model was given (its chunk, and the title): a claim may take a name or a year from an
  earlier paragraph, never from nowhere;
- most of the claim's content words (stemmed) occur in the quote or the paragraphs around
  it, and some in the quote itself.

`python bench/claim_support.py` measures how many genuine claims it drops (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from functools import cache

# Share of the claim's content words that must be found near the quote, and in the quote.
NEAR_SHARE = 0.5
QUOTE_SHARE = 0.25

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
           "k": 1e3, "m": 1e6, "bn": 1e9, "b": 1e9, "tn": 1e12}  # fmt: skip
_SCALED = re.compile(
    r"(\d+(?:[.,]\d+)*)\s*-?\s*(thousand|million|billion|trillion|bn|tn|k|m|b)\b", re.I
)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12, "half": 0.5,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "once": 1, "twice": 2,
    "single": 1, "double": 2, "triple": 3, "decade": 10, "decades": 10, "century": 100,
}  # fmt: skip
_DATE_WORDS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "monday", "tuesday", "wednesday", "thursday",
    "friday", "saturday", "sunday",
}  # fmt: skip
# Names written in more than one way; each group's members stand for each other.
_SAME_NAMES = [
    {"us", "u.s", "usa", "u.s.a", "america", "american", "americans", "united states"},
    {"uk", "u.k", "britain", "british", "united kingdom"},
    {"un", "u.n", "united nations"},
    {"eu", "e.u", "european union", "europe"},
]
_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just me more most my myself no nor not now of off on once only
    or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves said says say according told stated claimed noted added
    reported reportedly mr mrs ms dr also however would could may might must shall one ones
    per cent percent s t""".split()  # noqa: SIM905
)


@cache
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def _content(text: str) -> set[str]:
    words = [w.lower().replace("’", "'") for w in _WORD.findall(text)]
    words = [w.removesuffix("'s") for w in words]
    kept = [w for w in words if len(w) > 1 and w not in _STOP]
    return set(_stemmer().stemWords(kept))


def _value(number: str) -> float | None:
    try:
        return float(number.replace(",", ""))
    except ValueError:
        return None


def _numbers(text: str) -> set[float]:
    """Every number in `text`, as written and, with a scale word, as meant (2 million)."""
    found: set[float] = set()
    for match in _NUMBER.finditer(text):
        if (value := _value(match[0])) is not None:
            found.add(value)
    for match in _SCALED.finditer(text):
        if (value := _value(match[1])) is not None:
            found.add(value * _SCALES[match[2].lower()])
    for word in _WORD.findall(text.lower()):
        if word in _NUMBER_WORDS:
            found.add(float(_NUMBER_WORDS[word]))
    return found


# Titles are common nouns when a claim names a role ("The President", for a speech's "I").
_TITLES = frozenset(
    """president vice prime minister secretary senator governor mayor ambassador chancellor
    king queen general chief director chairman chairwoman spokesman spokeswoman speaker
    justice judge commissioner officer mr mrs ms dr sir""".split()  # noqa: SIM905
)


def _names(claim: str, context: str = "") -> list[str]:
    """The names of the claim: runs of capitalised words ("United States", "Lavrov"), less
    role titles. The first word (capitalised whatever it is) only when the context writes it
    capitalised inside a sentence."""
    names = []
    first = re.match(r"\W*([\w'’.-]+)", claim)
    for run in re.finditer(r"(?<![\w'’.-])[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*", claim):
        words = [re.sub(r"['’]\w{1,2}$", "", w).rstrip(".-") for w in run[0].split()]
        if (
            first
            and run.start() == first.start(1)
            and not re.search(rf"[a-z,;]\s+{re.escape(first.group(1))}", context)
            and not any(first.group(1).lower().rstrip(".") in group for group in _SAME_NAMES)
        ):
            words = words[1:]
        words = [w for w in words if w and w.lower() not in _STOP | _NUMBER_WORDS.keys()]
        phrase = " ".join(words).lower()
        if any(phrase in group for group in _SAME_NAMES):
            names.append(" ".join(words))
            continue
        names += [w for w in words if w.lower() not in _TITLES]
    return names


def _name_found(name: str, context_lower: str, context_words: set[str]) -> bool:
    lowered = name.lower().rstrip(".")
    if " " in lowered and not any(lowered in group for group in _SAME_NAMES):
        return lowered in context_lower
    for group in _SAME_NAMES:
        if lowered in group:
            return any(
                (alias in context_words) if " " not in alias else (alias in context_lower)
                for alias in group
            )
    # "Russia" in "Russian", "NATO" as "Nato": a word of the context that starts with it.
    if lowered in context_words or any(w.startswith(lowered) for w in context_words):
        return True
    return re.search(rf"(?<!\w){re.escape(lowered)}", context_lower) is not None  # "Onet.Pl"


def _share(words: set[str], found: set[str]) -> float:
    """The share of `words` in `found`, a word also counting when one is the start of the
    other, four letters at least ("peace" and "peacekeepers", "part" and "participate")."""

    def seen(word: str) -> bool:
        return word in found or any(
            min(len(word), len(other)) >= 4 and (other.startswith(word) or word.startswith(other))
            for other in found
        )

    return sum(1 for word in words if seen(word)) / len(words)


def unsupported(claim: str, quote: str, near: str, context: str) -> str | None:
    """Why `claim` is not supported by `quote`, or None when it is.

    `near`: the paragraphs around the quote; `context`: everything the model was given
    (its part of the article, and the title)."""
    context_lower = context.lower()
    context_words = {w.removesuffix("'s") for w in _WORD.findall(context_lower.replace("’", "'"))}
    context_words |= {w.rstrip(".") for w in re.findall(r"[a-z](?:\.[a-z])+\.?", context_lower)}
    known = _numbers(context)
    missing = [n for n in _NUMBER.findall(claim) if _value(n) is not None]
    missing = [n for n in missing if _value(n) not in known]
    if missing:
        return f"the claim's number {missing[0]} is not in the text"
    for word in _WORD.findall(claim.lower()):
        if word in _DATE_WORDS and word not in context_words:
            return f'the claim\'s date "{word.capitalize()}" is not in the text'
    names = _names(claim, context)
    for name in names:
        if not _name_found(name, context_lower, context_words):
            return f'the claim names "{name}", which the text does not'
    words = _content(claim) - _content(" ".join(names))  # names are checked above
    if not words:
        return None
    near_share = _share(words, _content(f"{quote} {near}"))
    quote_share = _share(words, _content(quote))
    if near_share < NEAR_SHARE or quote_share < QUOTE_SHARE:
        return (
            "the claim does not say what its quote says (too few of its words are in the "
            "quote or around it): restate the quote's own assertion"
        )
    return None


def paragraphs_around(text: str, start: int, end: int, extra: int = 1) -> str:
    """The paragraph(s) holding text[start:end], with `extra` paragraphs before and after."""
    left = start
    for _ in range(extra + 1):
        found = text.rfind("\n\n", 0, max(0, left - 1))
        left = 0 if found < 0 else found
        if found < 0:
            break
    right = end
    for _ in range(extra + 1):
        found = text.find("\n\n", right + 1)
        right = len(text) if found < 0 else found
        if found < 0:
            break
    return text[left:right]
