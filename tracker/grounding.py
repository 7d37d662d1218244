"""Finding a model's quote in the article, so no invented claim gets in.

Models re-type what they quote: curly quotes become straight, line breaks become spaces,
an en dash becomes a hyphen. We compare a normalised form of both texts, then map the
match back to the article's own characters, so `article[start:end]` is always the
article's exact wording, whatever the model typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

_TRANSLATE = str.maketrans(
    {
        **dict.fromkeys("“”„‟«»″〝〞＂", '"'),
        **dict.fromkeys("‘’‚‛‹›′`´", "'"),
        **dict.fromkeys("‐‑‒–—―−", "-"),
    }
)
_INVISIBLE = {"\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
_ENCLOSING = "\"' "
MIN_QUOTE_WORDS = 3


def _clusters(text: str) -> list[tuple[int, int]]:
    """Spans of each base character with the combining marks that follow it, so that
    "é" typed as e + U+0301 compares equal to a precomposed "é"."""
    if text.isascii():
        return [(i, i + 1) for i in range(len(text))]
    spans: list[tuple[int, int]] = []
    for i, char in enumerate(text):
        if spans and unicodedata.combining(char) and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def _normalise_cluster(cluster: str) -> str:
    if cluster in _INVISIBLE:
        return ""
    if cluster.isspace():
        return " "
    # Translate before NFKC (which would expand "´" or "″" first) and after it.
    return unicodedata.normalize("NFKC", cluster.translate(_TRANSLATE)).translate(_TRANSLATE)


# Characters that are their own comparison form: printable ASCII except white space and the
# backtick, and single spaces between them. Runs of them are copied at once, so the common
# case costs no Python per character (a 10 MB article is indexed in about a second). The
# repeat is possessive: a plain one keeps a backtracking entry per character, and a 10 MB
# article on one line took 1.2 GB of it.
_PLAIN_RUN = re.compile(r"[!-_a-~](?:[!-_a-~]| (?=[!-_a-~]))*+")


def _normalised_with_origin(text: str) -> tuple[str, np.ndarray, np.ndarray]:
    """The comparison form of `text`, and for each of its characters the start and end
    offsets in `text` of the characters it came from (int32/int64 arrays: a list of Python
    ints would take ~700 MB for a 10 MB article)."""
    chars: list[str] = []
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    length = 0  # characters in `chars` so far
    last = ""  # the last character appended
    dtype = np.int32 if len(text) < 2**31 - 1 else np.int64
    pending_s: list[int] = []
    pending_e: list[int] = []

    def flush_pending() -> None:
        if pending_s:
            starts.append(np.array(pending_s, dtype=dtype))
            ends.append(np.array(pending_e, dtype=dtype))
            pending_s.clear()
            pending_e.clear()

    def special(segment_start: int, segment_end: int) -> None:
        nonlocal length, last
        for start, end in _clusters_in(text, segment_start, segment_end):
            norm = _normalise_cluster(text[start:end])
            if norm == " " and (length == 0 or last == " "):
                continue
            for piece in norm:
                chars.append(piece)
                pending_s.append(start)
                pending_e.append(end)
                length += 1
                last = piece

    cursor = 0
    for run in _PLAIN_RUN.finditer(text):
        a, b = run.span()
        if b < len(text) and unicodedata.combining(text[b]):
            b -= 1  # the run's last letter takes the combining mark after it: special
            if b <= a:
                continue
        if a > cursor:
            special(cursor, a)
        flush_pending()
        chars.append(text[a:b])
        run_starts = np.arange(a, b, dtype=dtype)
        starts.append(run_starts)
        ends.append(run_starts + 1)
        length += b - a
        last = text[b - 1]
        cursor = b
    if cursor < len(text):
        special(cursor, len(text))
    flush_pending()
    empty = np.zeros(0, dtype=dtype)
    return (
        "".join(chars),
        np.concatenate(starts) if starts else empty,
        np.concatenate(ends) if ends else empty,
    )


def _clusters_in(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """`_clusters` of text[start:end], as offsets into `text` (a combining mark right after
    the segment's start joins the base character before it only within the segment)."""
    return [(a + start, b + start) for a, b in _clusters(text[start:end])]


def normalise(text: str) -> str:
    """The comparison form of `text`: one space for any white space, plain quotes."""
    return _normalised_with_origin(text)[0].strip()


@dataclass
class ArticleIndex:
    """An article's normalised text, with each normalised character's original offsets."""

    text: str
    normalised: str = field(init=False)
    _starts: np.ndarray = field(init=False, repr=False)
    _ends: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.normalised, self._starts, self._ends = _normalised_with_origin(self.text)

    def locate(self, quote: str, window: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """Offsets of `quote` in the article, preferring a match inside `window`.

        Returns None when the quote is not in the article, is blank, or is too short to
        stand for a claim. Enclosing quotation marks the model added are tolerated.
        """
        target = normalise(quote)
        candidates = [target, target.strip(_ENCLOSING)]
        for candidate in dict.fromkeys(candidates):
            if len(re.findall(r"\w+", candidate)) < MIN_QUOTE_WORDS:
                continue
            span = self._find(candidate, window)
            if span:
                return span
        return None

    def _find(self, needle: str, window: tuple[int, int] | None) -> tuple[int, int] | None:
        """The first match inside `window`, else the first match anywhere. The window is
        searched first, from its own start: scanning the article from the top for every
        claim made the offline extractor quadratic."""
        if window is not None:
            # (in the array's own dtype: numpy would otherwise copy the array to compare)
            bounds = np.array(window, dtype=self._starts.dtype)
            lo, hi = (int(i) for i in np.searchsorted(self._starts, bounds))
            span = self._first(needle, lo, min(len(self.normalised), hi + 1))
            if span and window[0] <= span[0] and span[1] <= window[1]:
                return span
        return self._first(needle, 0, len(self.normalised))

    def _first(self, needle: str, lo: int, hi: int) -> tuple[int, int] | None:
        pos = self.normalised.find(needle, lo, hi)
        while pos != -1:
            last = pos + len(needle) - 1
            if not self._inside_word(pos, last, needle):
                return int(self._starts[pos]), int(self._ends[last])
            pos = self.normalised.find(needle, pos + 1, hi)
        return None

    def _inside_word(self, first: int, last: int, needle: str) -> bool:
        """A match that starts or ends in the middle of a word ("rose" in "arose")."""
        text = self.normalised
        before = first > 0 and text[first - 1].isalnum() and needle[0].isalnum()
        after = last + 1 < len(text) and text[last + 1].isalnum() and needle[-1].isalnum()
        return before or after
