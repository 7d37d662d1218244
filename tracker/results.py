"""What every extractor hands back, and how claims found twice become one.

The model extractor (tracker/extract.py) and the offline one (tracker/offline.py) both
return an ExtractionResult or raise ExtractionFailed; both merge duplicates with
`merge_claims`. Kept apart from either so neither imports the other.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracker.schemas import ExtractedClaim

if TYPE_CHECKING:  # the offline extractor needs no HTTP client loaded
    from tracker.llm import CallRecord


class ExtractionFailed(Exception):
    """No claims could be extracted from this article; `reason` says why."""

    def __init__(
        self, reason: str, calls: list[CallRecord], *, fatal: bool = False, pending: bool = False
    ) -> None:
        """`fatal`: every article would fail the same way (the run stops, the article stays
        pending). `pending`: only this article, but a later run should try it again (a
        Batch API request that expired): it stays pending with the reason."""
        super().__init__(reason)
        self.reason = reason
        self.calls = calls
        self.fatal = fatal
        self.pending = pending


@dataclass
class ExtractionResult:
    claims: list[ExtractedClaim]
    dropped: int
    calls: list[CallRecord]
    model: str
    prompt_hash: str
    chunks: int = 1
    drop_reasons: list[str] = field(default_factory=list)  # why each dropped claim was


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def _similar(a: str, b: str, threshold: float = 0.5) -> bool:
    wa, wb = _words(a), _words(b)
    return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= threshold


def resembles(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """The same claim, by its wording or by its quote: (claim text, quote) pairs."""
    return _similar(a[0], b[0]) or _similar(a[1], b[1])


def _same_claim(a: ExtractedClaim, b: ExtractedClaim) -> bool:
    if _words(a.text) == _words(b.text):
        return True
    overlap = min(a.quote_end, b.quote_end) - max(a.quote_start, b.quote_start)
    if overlap <= 0:
        return False
    wa, wb = _words(a.text), _words(b.text)
    return len(wa & wb) / max(1, len(wa | wb)) >= 0.6


def merge_claims(claims: list[ExtractedClaim]) -> list[ExtractedClaim]:
    """One claim per distinct assertion: the same claim found twice (overlapping chunks,
    or listed twice) is kept once, with the higher score and any claimant either had.

    A claim is compared only with the kept claims that have its exact words (a hash
    lookup) or whose quotes overlap its own (a sweep in text order), not with every
    other claim: the offline extractor turns each sentence of a 10 MB file into a claim.
    """
    kept: list[ExtractedClaim] = []
    by_words: dict[frozenset[str], int] = {}
    ending: list[tuple[int, int]] = []  # (quote end, index in kept): quotes still open
    open_now: set[int] = set()
    for claim in sorted(claims, key=lambda c: (c.quote_start, c.quote_end)):
        while ending and ending[0][0] <= claim.quote_start:
            _, i = heapq.heappop(ending)
            if kept[i].quote_end <= claim.quote_start:
                open_now.discard(i)
        words = frozenset(_words(claim.text))
        same = by_words.get(words)
        if same is None:
            same = next((i for i in sorted(open_now) if _same_claim(claim, kept[i])), None)
        if same is None:
            kept.append(claim)
            same = len(kept) - 1
        else:
            best, rest = sorted((kept[same], claim), key=lambda c: -c.checkworthiness)
            if best.claimant is None and rest.claimant is not None:
                best = best.model_copy(update={"claimant": rest.claimant})
            kept[same] = best
        by_words.setdefault(words, same)
        open_now.add(same)
        heapq.heappush(ending, (kept[same].quote_end, same))
    return unify_claimants(kept)


def unify_claimants(claims: list[ExtractedClaim]) -> list[ExtractedClaim]:
    """Within one article, "Lavrov" and "Sergey Lavrov" are one claimant: use the fuller
    name when exactly one fuller name contains all of the shorter one's words."""
    names = {c.claimant for c in claims if c.claimant}
    words = {name: frozenset(_words(name)) for name in names}
    having: dict[str, set[str]] = {}  # word -> the names that contain it
    for name, its in words.items():
        for word in its:
            having.setdefault(word, set()).add(name)
    canonical: dict[str, str] = {}
    for name in names:
        if not words[name]:
            continue
        rarest = min(words[name], key=lambda w: len(having[w]))
        fuller = [n for n in having[rarest] if n != name and words[name] < words[n]]
        if len(fuller) == 1:
            canonical[name] = fuller[0]
        elif len(fuller) > 1:
            longest = [n for n in fuller if not any(words[n] < words[m] for m in fuller)]
            if len(longest) == 1:
                canonical[name] = longest[0]
    return [
        c.model_copy(update={"claimant": canonical[c.claimant]}) if c.claimant in canonical else c
        for c in claims
    ]
