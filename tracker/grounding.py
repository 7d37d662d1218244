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


def _normalised_with_origin(text: str) -> tuple[str, list[int], list[int]]:
    """The comparison form of `text`, and for each of its characters the start and end
    offsets in `text` of the characters it came from."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in _clusters(text):
        char = text[start]
        if end - start == 1 and char.isascii() and char.isalnum():  # the common case, fast
            chars.append(char)
            starts.append(start)
            ends.append(end)
            continue
        norm = _normalise_cluster(text[start:end])
        if norm == " " and (not chars or chars[-1] == " "):
            continue
        for piece in norm:
            chars.append(piece)
            starts.append(start)
            ends.append(end)
    return "".join(chars), starts, ends


def normalise(text: str) -> str:
    """The comparison form of `text`: one space for any white space, plain quotes."""
    return _normalised_with_origin(text)[0].strip()


@dataclass
class ArticleIndex:
    """An article's normalised text, with each normalised character's original offsets."""

    text: str
    normalised: str = field(init=False)
    _starts: list[int] = field(init=False, repr=False)
    _ends: list[int] = field(init=False, repr=False)

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
        first = None
        pos = self.normalised.find(needle)
        while pos != -1:
            last = pos + len(needle) - 1
            if not self._inside_word(pos, last, needle):
                start, end = self._starts[pos], self._ends[last]
                if window is None or (window[0] <= start and end <= window[1]):
                    return start, end
                first = first or (start, end)
            pos = self.normalised.find(needle, pos + 1)
        return first

    def _inside_word(self, first: int, last: int, needle: str) -> bool:
        """A match that starts or ends in the middle of a word ("rose" in "arose")."""
        text = self.normalised
        before = first > 0 and text[first - 1].isalnum() and needle[0].isalnum()
        after = last + 1 < len(text) and text[last + 1].isalnum() and needle[-1].isalnum()
        return before or after
