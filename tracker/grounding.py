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


def _normalise_char(char: str) -> str:
    if char in _INVISIBLE:
        return ""
    if char.isspace():
        return " "
    return unicodedata.normalize("NFKC", char).translate(_TRANSLATE)


def normalise(text: str) -> str:
    """The comparison form of `text`: one space for any white space, plain quotes."""
    return re.sub(r" +", " ", "".join(_normalise_char(c) for c in text)).strip()


@dataclass
class ArticleIndex:
    """An article's normalised text, with each normalised character's original offset."""

    text: str
    normalised: str = field(init=False)
    _origin: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        chars: list[str] = []
        origin: list[int] = []
        for i, char in enumerate(self.text):
            norm = _normalise_char(char)
            if norm == " " and (not chars or chars[-1] == " "):
                continue
            for piece in norm:
                chars.append(piece)
                origin.append(i)
        self.normalised = "".join(chars)
        self._origin = origin

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
            start = self._origin[pos]
            end = self._origin[pos + len(needle) - 1] + 1
            if window is None or (window[0] <= start and end <= window[1]):
                return start, end
            first = first or (start, end)
            pos = self.normalised.find(needle, pos + 1)
        return first
