"""Splitting long articles into overlapping chunks that fit the model's context.

Chunks are spans of the article itself (never re-joined text), so a quote found in a
chunk maps straight back to article offsets. Cuts fall between paragraphs, else between
sentences, else at white space; consecutive chunks share about `overlap` characters so a
claim that straddles a cut is seen whole at least once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    text: str


def _spans(text: str, start: int, end: int, boundary: re.Pattern[str]) -> list[tuple[int, int]]:
    spans, cursor = [], start
    for match in boundary.finditer(text, start, end):
        if match.start() > cursor:
            spans.append((cursor, match.start()))
        cursor = match.end()
    if cursor < end:
        spans.append((cursor, end))
    return spans


def _split_at_space(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    spans = []
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        spans.append((start, cut))
        start = cut
    spans.append((start, end))
    return spans


def _units(text: str, limit: int) -> list[tuple[int, int]]:
    """Paragraph spans, with any paragraph longer than `limit` cut into smaller pieces."""
    units = []
    for p_start, p_end in _spans(text, 0, len(text), _PARAGRAPH_BREAK):
        if p_end - p_start <= limit:
            units.append((p_start, p_end))
            continue
        for s_start, s_end in _spans(text, p_start, p_end, _SENTENCE_END):
            units.extend(_split_at_space(text, s_start, s_end, limit))
    return units


def split_into_chunks(text: str, max_chars: int, overlap: int = 0) -> list[Chunk]:
    """Cover `text` with chunks of at most `max_chars` characters, in order."""
    if len(text) <= max_chars:
        return [Chunk(0, len(text), text)]
    units = _units(text, max_chars)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= max_chars:
            j += 1
        start, end = units[i][0], units[j][1]
        chunks.append(Chunk(start, end, text[start:end]))
        if j == len(units) - 1:
            break
        # Step back over trailing units that fit in the overlap, but always move forward.
        nxt = j + 1
        while nxt - 1 > i and end - units[nxt - 1][0] <= overlap:
            nxt -= 1
        i = nxt
    return chunks
