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


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    opens_paragraph: bool


def _units(text: str, limit: int) -> list[_Unit]:
    """Sentence spans (pieces of at most `limit` characters), marking paragraph starts."""
    units = []
    for p_start, p_end in _spans(text, 0, len(text), _PARAGRAPH_BREAK):
        first = True
        for s_start, s_end in _spans(text, p_start, p_end, _SENTENCE_END):
            for start, end in _split_at_space(text, s_start, s_end, limit):
                units.append(_Unit(start, end, first))
                first = False
    return units


def split_into_chunks(text: str, max_chars: int, overlap: int = 0) -> list[Chunk]:
    """Cover `text` with chunks of at most `max_chars` characters, in order.

    A chunk ends at a paragraph break when one falls in its second half, else between
    sentences; the next chunk starts up to `overlap` characters earlier, on a sentence.
    """
    if len(text) <= max_chars:
        return [Chunk(0, len(text), text)]
    units = _units(text, max_chars)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1].end - units[i].start <= max_chars:
            j += 1
        if j + 1 < len(units):  # not the last chunk: prefer to end a paragraph
            for k in range(j, i, -1):
                if units[k + 1].opens_paragraph and units[k].end - units[i].start >= max_chars // 2:
                    j = k
                    break
        start, end = units[i].start, units[j].end
        chunks.append(Chunk(start, end, text[start:end]))
        if j == len(units) - 1:
            break
        nxt = j + 1
        while nxt - 1 > i and end - units[nxt - 1].start <= overlap:
            nxt -= 1
        i = nxt
    return chunks
