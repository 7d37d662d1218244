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
  it, and some in the quote itself;
- it does not turn the quote around: no word whose opposite the quote uses instead ("rose"
  for "fell", "convicted" for "cleared"), no negation dropped or added ("did not raise" /
  "raised"), no accusation ("fraud", "bribed", "a criminal") or cause ("because ...") that
  the quote and the paragraphs around it do not give.

`python bench/claim_support.py` measures how many genuine claims it drops (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache, lru_cache

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


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """A word's stem, remembered: the same words come back in every claim and paragraph
    (stemming was most of an article's CPU before)."""
    return _stemmer().stemWord(word)


def _content(text: str) -> set[str]:
    return {w for w in map(_content_word, _WORD.findall(text)) if w is not None}


@lru_cache(maxsize=200_000)
def _content_word(word: str) -> str | None:
    """A word's stem, or None for a function word: each word is worked out once."""
    word = word.lower().replace("’", "'").removesuffix("'s")
    return _stem(word) if len(word) > 1 and word not in _STOP else None


# Texts up to this long are remembered (a 10 MB article of one paragraph is not).
_REMEMBERED_CHARS = 50_000


def _shared(words: Callable[[str], Iterable[str]]) -> Callable[[str], frozenset[str]]:
    """`words` of a text many claims share (the paragraphs around their quotes), as a set,
    remembered for the next claims (texts over _REMEMBERED_CHARS are not kept)."""
    remembered = lru_cache(maxsize=64)(lambda text: frozenset(words(text)))

    def of(text: str) -> frozenset[str]:
        return frozenset(words(text)) if len(text) > _REMEMBERED_CHARS else remembered(text)

    return of


_content_of = _shared(_content)


@cache
def _date_content() -> frozenset[str]:
    return frozenset(_content(" ".join(_DATE_WORDS)))


@lru_cache(maxsize=16)
def _context_words(context_lower: str) -> frozenset[str]:
    """The words of what the model was sent, once per chunk (each of its claims asks)."""
    words = {w.removesuffix("'s") for w in _WORD.findall(context_lower.replace("’", "'"))}
    words |= {w.rstrip(".") for w in re.findall(r"[a-z](?:\.[a-z])+\.?", context_lower)}
    return frozenset(words)


def _value(number: str) -> float | None:
    try:
        return float(number.replace(",", ""))
    except ValueError:
        return None


def _key(value: float) -> float:
    """A number as compared: 4.2 billion and 4,200 million are one value."""
    return float(f"{value:.9g}")


def _listed(words: str) -> list[str]:
    return words.split()


_UNITS = {
    w: float(i)
    for i, w in enumerate(
        _listed(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen"
        )
    )
}
_TENS = {
    w: float(10 * i)
    for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)  # noqa: SIM905
}
_MULTIPLIERS = {"hundred": 100.0, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ANY_NUMBER_WORD = "|".join([*_UNITS, *_TENS, *_MULTIPLIERS])
_NUMBER_WORD_RUN = re.compile(
    rf"\b(?:{_ANY_NUMBER_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_ANY_NUMBER_WORD}))*\b", re.IGNORECASE
)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]  # fmt: skip


_SCALE_AFTER = re.compile(r"\s*-?\s*(bn|tn|k|m|b)\b", re.IGNORECASE)


def _spelled(text: str) -> list[tuple[str, float, int]]:
    """Numbers written as words ("seven", "twenty-three", "three hundred"), with values.
    A lone "one" is left out: it is more often a pronoun ("one of them") than a count."""
    found = []
    for match in _NUMBER_WORD_RUN.finditer(text):
        words = [w for w in re.split(r"[\s-]+", match[0].lower()) if w != "and"]
        if words in (["one"], ["zero"]) or all(w in _MULTIPLIERS for w in words):
            continue  # ("million" alone scales a written number: checked with it)
        total = current = 0.0
        for word in words:
            if word in _UNITS or word in _TENS:
                current += _UNITS.get(word, 0.0) + _TENS.get(word, 0.0)
            elif word == "hundred":
                current = max(current, 1.0) * 100
            else:
                total += max(current, 1.0) * _MULTIPLIERS[word]
                current = 0.0
        found.append((match[0], total + current, match.end()))
    return found


def _numbers(text: str) -> set[float]:
    """Every number in `text`, as written and, with a scale word, as meant (2 million);
    numbers written as words too, alone and as phrases ("twenty-three")."""
    found: set[float] = set()
    for match in _NUMBER.finditer(text):
        if (value := _value(match[0])) is not None:
            found.add(_key(value))
    for match in _SCALED.finditer(text):
        if (value := _value(match[1])) is not None:
            found.add(_key(value * _SCALES[match[2].lower()]))
    for word in _WORD.findall(text.lower()):
        if word in _NUMBER_WORDS:
            found.add(_key(float(_NUMBER_WORDS[word])))
    found |= {_key(value) for _, value, _ in _spelled(text)}
    return found


def _missing_number(claim: str, known: set[float], context_words: set[str]) -> str | None:
    """The first number of the claim (in digits or words, or an ISO date) the text lacks."""
    dates = list(_ISO_DATE.finditer(claim))
    for date in dates:  # 2022-07-22 for "July 22, 2022"
        year, month, day = (int(part) for part in date.groups())
        month_known = 1 <= month <= 12 and (
            _MONTHS[month - 1] in context_words or _key(month) in known
        )
        if not (_key(year) in known and _key(day) in known and month_known):
            return date[0]
    scaled = {m.start(1): m for m in _SCALED.finditer(claim)}
    for match in _NUMBER.finditer(claim):
        if any(d.start() <= match.start() < d.end() for d in dates):
            continue
        value = _value(match[0])
        if value is None or _key(value) in known:
            continue
        scale = scaled.get(match.start())
        if scale is not None and _key(value * _SCALES[scale[2].lower()]) in known:
            continue  # $4,200 million for "$4.2 billion"
        return match[0]
    for phrase, value, end in _spelled(claim):
        if _key(value) in known:
            continue
        scale = _SCALE_AFTER.match(claim, end)
        if scale is None or _key(value * _SCALES[scale[1].lower()]) not in known:
            return phrase  # (with a scale: "ninety-four m" for "94 million")
    return None


# Titles are common nouns when a claim names a role ("The President", for a speech's "I").
_TITLES = frozenset(
    """president vice prime minister secretary senator governor mayor ambassador chancellor
    king queen general chief director chairman chairwoman spokesman spokeswoman speaker
    justice judge commissioner officer mr mrs ms dr sir""".split()  # noqa: SIM905
)
# Words that begin sentences and are never names.
_OPENERS = frozenset(
    """today tonight yesterday tomorrow last next since every many several nearly almost yet
    even already meanwhile overall together still thus therefore moreover although though
    unless whether despite among around across instead indeed perhaps while""".split()  # noqa: SIM905
)
_NOT_NAMES = _STOP | _NUMBER_WORDS.keys() | _DATE_WORDS | _OPENERS


def _names(claim: str) -> list[str]:
    """The names of the claim: runs of capitalised words ("United States", "Lavrov"), less
    role titles, function words and number words. The first word of the claim counts too
    (capitalised whatever it is): a claim that begins with a word the text never uses, in
    any case ("Putin was cleared ..."), names someone or something the text does not."""
    names = []
    for run in re.finditer(r"(?<![\w'’.-])[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*", claim):
        words = [re.sub(r"['’]\w{1,2}$", "", w).rstrip(".-") for w in run[0].split()]
        words = [w for w in words if w and w.lower() not in _NOT_NAMES]
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


@lru_cache(maxsize=16)
def _context_numbers(context: str) -> frozenset[float]:
    return frozenset(_numbers(context))


def unsupported(claim: str, quote: str, near: str, context: str) -> str | None:
    """Why `claim` is not supported by `quote`, or None when it is.

    `near`: the paragraphs around the quote; `context`: everything the model was given
    (its part of the article, and the title)."""
    context_lower = context.lower()
    context_words = _context_words(context_lower)
    if (number := _missing_number(claim, _context_numbers(context), context_words)) is not None:
        return f"the claim's number {number} is not in the text"
    for word in _WORD.findall(claim.lower()):
        if word in _DATE_WORDS and word not in context_words:
            return f'the claim\'s date "{word.capitalize()}" is not in the text'
    names = _names(claim)
    for name in names:
        if not _name_found(name, context_lower, context_words):
            return f'the claim names "{name}", which the text does not'
    if why := _turned_around(claim, quote, near):
        return why
    # (names, numbers and dates are checked above)
    words = _content(claim) - _content(" ".join(names)) - _date_content()
    if not words:
        return None
    # The words of "quote near" are those of each (a space parts them): the paragraphs'
    # are worked out once for all the claims quoting them.
    quote_words = _content(quote)
    near_share = _share(words, quote_words | _content_of(near))
    quote_share = _share(words, quote_words)
    if near_share < NEAR_SHARE or quote_share < QUOTE_SHARE:
        return (
            "the claim does not say what its quote says (too few of its words are in the "
            "quote or around it): restate the quote's own assertion"
        )
    return None


# Words and their opposites: a claim that uses one where its quote (and the text around it)
# has only the other says the reverse of it.
_OPPOSITES = [
    ("rise rises rose risen rising climb climbed climbs soar soared jump jumped grew grow "
     "grows growing increase increased increases increasing gain gained gains",
     "fall falls fell fallen falling drop dropped drops decline declined declines declining "
     "decrease decreased decreases decreasing sank sink shrank shrink shrinks plunge plunged "
     "slump slumped lose lost loses losing"),
    ("up#", "down#"),
    ("high higher highest more# most#", "low lower lowest less# least# fewer# fewest#"),
    ("convicted guilty condemned sentenced", "cleared acquitted innocent exonerated"),
    ("win wins won winning victory", "lose loses lost losing defeat defeated"),
    ("approve approved approves passed pass passes adopted", "reject rejected rejects vetoed "
     "veto vetoes blocked block blocks defeated"),
    ("support supports supported supporting favor favors favoured favored",
     "oppose opposes opposed opposing against"),
    ("revenue revenues profit profits profitable surplus surpluses",
     "loss losses deficit deficits"),
    ("accept accepts accepted agree agreed agrees", "refuse refused refuses reject rejected "
     "rejects deny denied denies disagree disagreed"),
    ("allow allows allowed permit permitted legal lawful", "ban bans banned forbid forbade "
     "forbidden prohibit prohibited illegal unlawful"),
    ("best", "worst"),
    ("true", "false"),
    ("strengthen strengthened stronger", "weaken weakened weaker"),
    ("expand expanded expands", "shrink shrank shrinks contract contracted"),
    ("before", "after"),
    ("hired hire hiring", "fired fire firing laid"),
    ("open opened opens", "closed close closes shut"),
]  # fmt: skip
_OPPOSITE_SETS = [(frozenset(a.split()), frozenset(b.split())) for a, b in _OPPOSITES]
# "up 12 percent", "more than 40": direction words only next to a number.
_DIRECTED = re.compile(
    r"\b(up|down|more|most|less|least|fewer|fewest)\s+(?:than\s+|by\s+)?[$€£]?\d"
)
_NEGATION = frozenset(
    "not no never neither nor without cannot none nobody nothing".split()  # noqa: SIM905
)
# A negation that negates nothing the claim could restate.
_NOT_NEGATING = re.compile(
    r"\b(?:not (?:only|just|merely|least|since)|no (?:doubt|matter|longer than))\b"
)
# Accusations and violence: a claim that adds one of these to a quote that does not say it
# is the injected or invented claim the check is for ("... which faked the data").
_LOADED = _listed(
    "fraud brib corrupt crimin crime fake faked faking forge forged forgery lie lied liar "
    "lying rigged rigging illegal unlawful arrest convict indict guilty scandal scam terror "
    "traitor treason murder kill rape steal stole stolen theft thief embezzl launder extort "
    "cheat invad invasion attack bomb abuse abusive smuggl conspir fabricat falsif racist "
    "nazi pedophil molest assault blackmail perjur felon"
)
_LOADED_PREFIXES = tuple(_LOADED)
_CAUSAL = re.compile(
    r"\b(?:because|due to|caus(?:e|ed|es|ing)|led to|leads? to|result(?:s|ed)? (?:of|in|from)|"
    r"as a result|thanks to|blam(?:e|ed|es)|attributed to|owing to|responsible for)\b"
)


def _words_of(text: str) -> list[str]:
    """Lower-case words, "n't" as "not", and direction words next to a number marked "#"."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"n't\b", " not", text).replace("cannot", "can not")
    text = _DIRECTED.sub(lambda m: m[0].replace(m[1], m[1] + "#", 1), text)
    return re.findall(r"[^\W\d_]+#?", text)


_word_set = _shared(_words_of)


def _negated(words: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The content words a negation governs (the first content word within four words
    after it), and those used without one: {stem: word}."""
    negated: dict[str, str] = {}
    plain: dict[str, str] = {}
    stem = _stem
    governed = -1
    for i, word in enumerate(words):
        if word in _NEGATION:
            governed = i + 4
            continue
        if word in _STOP or len(word) < 2 or word.endswith("#"):
            continue
        if i <= governed:
            negated.setdefault(stem(word), word)
            governed = -1
        else:
            plain.setdefault(stem(word), word)
    return negated, plain


# A quote ending in a direction word (or "than", "by"): its "#" depends on what follows.
_OPEN_END = re.compile(r"\b(?:up|down|more|most|less|least|fewer|fewest|than|by)\s*$")


def _turned_around(claim: str, quote: str, near: str) -> str | None:
    """Why the claim says the opposite of its quote, or adds what the text does not say.
    `near`: the paragraphs around the quote; the quote and they are "around" it."""
    around = f"{quote}\n{near}"
    claim_words = _words_of(claim)
    quote_words = set(_words_of(quote))
    if _OPEN_END.search(quote.lower()):  # "up" + "\n12" would be "up#": read them as one
        around_words = set(_words_of(around))
    else:  # no word runs across the line break: the words of each
        around_words = quote_words | _word_set(near)
    claim_set = set(claim_words)
    for one, other in _OPPOSITE_SETS:
        for said, instead in ((one, other), (other, one)):
            used, found = claim_set & said, quote_words & instead
            if used and found and not around_words & said:
                return (
                    f'the claim says "{sorted(used)[0].rstrip("#")}" where its quote says '
                    f'"{sorted(found)[0].rstrip("#")}"'
                )
    claim_negated, claim_plain = _negated(_words_of(_NOT_NEGATING.sub(" ", claim.lower())))
    quote_negated, quote_plain = _negated(_words_of(_NOT_NEGATING.sub(" ", quote.lower())))
    if lost := sorted((quote_negated.keys() - quote_plain.keys()) & claim_plain.keys()
                      - claim_negated.keys()):  # fmt: skip
        return f'the quote says "not {quote_negated[lost[0]]}", the claim leaves the "not" out'
    if added := sorted((claim_negated.keys() - claim_plain.keys()) & quote_plain.keys()
                       - quote_negated.keys()):  # fmt: skip
        return f'the claim says "not {claim_negated[added[0]]}", which its quote does not'
    for word in claim_words:
        if not word.startswith(_LOADED_PREFIXES):  # (most words: one test in C)
            continue
        for loaded in _LOADED:
            if word.startswith(loaded) and not any(w.startswith(loaded) for w in around_words):
                return f'the claim adds "{word}", which its quote and the text around it do not say'
    if _CAUSAL.search(claim.lower()) and not _CAUSAL.search(around.lower()):
        return "the claim gives a cause (because, led to ...) that its quote does not"
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
