"""Article text in, grounded and de-duplicated claims out (no database here).

Per chunk: ask, validate every claim against the article, re-ask about the claims that
failed (bounded by `TRACKER_MAX_REASKS`), and drop and count what still fails. A chunk
whose answer cannot be read at all is re-asked the same way; when attempts run out, or
the server refuses, the whole article fails with the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tracker.chunking import Chunk, split_into_chunks
from tracker.config import Settings
from tracker.grounding import ArticleIndex
from tracker.llm import CallRecord, ModelCallError, ModelClient, ModelOutputError
from tracker.prompts import PromptSet, load_prompts
from tracker.results import ExtractionFailed, ExtractionResult, merge_claims, resembles
from tracker.sanitize import storable
from tracker.schemas import ExtractedClaim, response_schema
from tracker.support import paragraphs_around, unsupported

_CODE_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


# One answer is at most this many claims (a 12,000-character chunk holds perhaps 60): more
# is a model gone astray, and validating 20,000 of them took minutes of the event loop.
MAX_CLAIMS_PER_ANSWER = 300
# A re-ask names at most this many unusable claims (the rest are dropped): 5,000 of them
# made re-asks of 1.6 MB.
MAX_CLAIMS_REASKED = 30


class _CutOff(Exception):
    """The answer stopped at the output limit (finish_reason=length)."""


CUT_OFF_SPLIT = (
    "the answer was cut off at the output limit (finish_reason=length); the text was split "
    "in two and each half asked again"
)


async def extract_claims(
    text: str, *, title: str | None, client: ModelClient, settings: Settings
) -> ExtractionResult:
    """The grounded claims of one article, or ExtractionFailed.

    Chunks are asked one after the other (articles run concurrently in a batch), so a
    conversation and its recording stay in a fixed order. A chunk whose answer is cut off
    at the output limit (too many claims for TRACKER_MAX_OUTPUT_TOKENS) is split in two,
    by paragraph, else by sentence, and each half asked again, down to one sentence.
    """
    prompts = load_prompts()
    article = ArticleIndex(text)
    chunks = article_chunks(text, settings)
    calls: list[CallRecord] = []
    found: list[ExtractedClaim] = []
    result = ExtractionResult([], 0, calls, settings.model, prompts.hash, chunks=len(chunks))
    for number, first in enumerate(chunks, 1):
        pending = [first]
        while pending:
            chunk = pending.pop(0)
            messages = chunk_messages(prompts, title, chunk, number, len(chunks))
            session = _ChunkSession(
                client, prompts, article, chunk, messages, calls, settings, title
            )
            try:
                found.extend(await session.run())
            except _CutOff:
                halves = split_in_two(text, chunk)
                if halves is None:
                    raise ExtractionFailed(
                        "the model's answer was cut off at the output limit "
                        "(finish_reason=length) even for a single sentence; raise "
                        f"TRACKER_MAX_OUTPUT_TOKENS (now {settings.max_output_tokens})",
                        calls,
                    ) from None
                calls[-1].error = CUT_OFF_SPLIT
                pending[:0] = halves
                continue
            result.dropped += session.dropped
            result.drop_reasons += session.drop_reasons
    result.claims = sorted(merge_claims(found), key=lambda c: (c.quote_start, c.quote_end))
    return result


def article_chunks(text: str, settings: Settings) -> list[Chunk]:
    """The parts of an article asked about one request each (the prefilter's, if set)."""
    if settings.prefilter is not None:
        return _prefiltered_chunks(text, settings)
    return split_into_chunks(text, settings.chunk_chars, settings.chunk_overlap_chars)


def chunk_messages(
    prompts: PromptSet, title: str | None, chunk: Chunk, number: int, parts: int
) -> list[dict[str, str]]:
    """The first request's messages about a chunk (part `number` of `parts`)."""
    return [
        {"role": "system", "content": prompts.system},
        {
            "role": "user",
            "content": prompts.user_message(title=title, text=chunk.text, part=number, parts=parts),
        },
    ]


def first_requests(text: str, title: str | None, settings: Settings) -> list[list[dict[str, str]]]:
    """The messages of the first request about each chunk, in order: exactly what
    `extract_claims` sends first (the Batch API sends these ahead, tracker/apibatch.py)."""
    prompts = load_prompts()
    chunks = article_chunks(text, settings)
    return [chunk_messages(prompts, title, c, n, len(chunks)) for n, c in enumerate(chunks, 1)]


_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")


def split_in_two(article: str, chunk: Chunk) -> tuple[Chunk, Chunk] | None:
    """`chunk` cut in two near its middle: at a paragraph break if it has one, else
    between sentences; None for a single sentence."""
    text = chunk.text
    middle = len(text) // 2
    for boundary in (re.compile(r"\n\s*\n"), _SENTENCE_BREAK):
        cuts = [(m.start(), m.end()) for m in boundary.finditer(text) if m.start() > 0]
        cuts = [(a, b) for a, b in cuts if b < len(text)]
        if cuts:
            a, b = min(cuts, key=lambda cut: abs(cut[0] - middle))
            if article[chunk.start : chunk.end] == text:  # a span of the article
                return (
                    Chunk(chunk.start, chunk.start + a, text[:a]),
                    Chunk(chunk.start + b, chunk.end, text[b:]),
                )
            return Chunk(chunk.start, chunk.end, text[:a]), Chunk(chunk.start, chunk.end, text[b:])
    return None


def _prefiltered_chunks(text: str, settings: Settings) -> list[Chunk]:
    """Chunks of only the paragraphs the offline model finds worth checking (a chunk's
    text then skips the paragraphs in between; grounding still searches the article)."""
    from tracker.offline import keep_checkworthy_paragraphs

    assert settings.prefilter is not None
    chunks: list[Chunk] = []
    group: list[tuple[int, int]] = []
    for span in keep_checkworthy_paragraphs(text, settings.prefilter):
        size = sum(b - a + 2 for a, b in group) + span[1] - span[0]
        if group and size > settings.chunk_chars:
            chunks.append(_joined(text, group))
            group = []
        group.append(span)
    if group:
        chunks.append(_joined(text, group))
    return chunks


def _joined(text: str, spans: list[tuple[int, int]]) -> Chunk:
    return Chunk(spans[0][0], spans[-1][1], "\n\n".join(text[a:b] for a, b in spans))


@dataclass
class Answer:
    """A readable answer: its claims as the model wrote them, each checked on its own."""

    claims: list[Any]


def parse_answer(content: str | None) -> Answer:
    """The model's JSON answer, tolerating a Markdown code fence around it. Only its shape
    is required here (an object with a list of claims); each claim is validated on its
    own, so one odd claim (a type spelled "Statistic", an extra key) costs only itself."""
    if content is None or not content.strip():
        raise ValueError("the answer was empty")
    fenced = _CODE_FENCE.match(content)
    try:
        data = json.loads(fenced.group(1) if fenced else content, parse_int=_number)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ValueError('the answer must be a JSON object {"claims": [...]}')
    return Answer(data["claims"])


def _number(digits: str) -> int | float:
    """An integer of the answer. Python refuses to read one of more than 4,300 digits, which
    made a whole answer unreadable for one absurd score: read as a float (inf), it fails
    only its own claim."""
    return int(digits) if len(digits) <= 100 else float(digits)


def _short(error: ValidationError | ValueError) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        given = first.get("input")
        if isinstance(given, str | int | float) and len(str(given)) <= 40 and where != "answer":
            where = f"{where} {given!r}"
        return f"{where}: {first['msg']}" + (
            f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        )
    return str(error)


def _text(raw: Any, key: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    return storable(value) if isinstance(value, str) else ""


class _ChunkSession:
    """The conversation with the model about one chunk, with its re-asks."""

    def __init__(
        self,
        client: ModelClient,
        prompts: PromptSet,
        article: ArticleIndex,
        chunk: Chunk,
        messages: list[dict[str, str]],
        calls: list[CallRecord],
        settings: Settings,
        title: str | None = None,
    ) -> None:
        self.client, self.prompts, self.article, self.chunk = client, prompts, article, chunk
        self.messages, self.calls = messages, calls
        self.attempts = settings.max_reasks + 1
        self.dropped = 0
        self.drop_reasons: list[str] = []
        self._dropped: set[str] = set()
        self.context = f"{title or ''}\n{chunk.text}"

    async def run(self) -> list[ExtractedClaim]:
        kept: list[ExtractedClaim] = []
        failing: list[tuple[Any, str]] | None = None  # None: no readable answer yet
        unreadable = ""
        for attempt in range(1, self.attempts + 1):
            try:
                content = await self._ask(attempt)
            except _CutOff:
                if failing is None:  # the first answer: the chunk is split and asked again
                    raise
                for raw, why in failing:  # a re-ask cut off: what was validated is kept
                    self._drop(raw, f"{why} (the re-ask's answer was cut off)")
                return kept
            try:
                answer = parse_answer(content) if content is not None else None
            except ValueError as exc:
                answer, unreadable = None, _short(exc)
            if answer is None:  # unreadable: ask again; claims failing so far stay failing
                unreadable = unreadable or "the server's response was not a chat completion"
                self._reask(content, self.prompts.reask_format_message(unreadable))
                continue
            proposed = answer.claims
            if len(proposed) > MAX_CLAIMS_PER_ANSWER and failing is None:
                self._drop_many(
                    len(proposed) - MAX_CLAIMS_PER_ANSWER,
                    f"more than {MAX_CLAIMS_PER_ANSWER} claims in one answer: the rest were "
                    "not read",
                )
            proposed = proposed[:MAX_CLAIMS_PER_ANSWER]  # (a re-ask's extra: repeats)
            valid, invalid = self._validate(proposed)
            kept.extend(valid)
            if failing is not None:  # a re-ask: which failing claims came back, and how?
                returned = [(v.text, v.quote) for v in valid] + [
                    (_text(w, "claim"), _text(w, "quote")) for w, _ in invalid
                ]
                again = [w for w, _ in invalid]
                for raw, why in failing:
                    pair = (_text(raw, "claim"), _text(raw, "quote"))
                    if raw in again or (any(pair) and any(resembles(pair, r) for r in returned)):
                        continue  # it came back (and is failing again, or now valid)
                    self._drop(raw, why)  # left out, as the re-ask allows: dropped
            failing = invalid
            if not failing:
                return kept
            if len(failing) > MAX_CLAIMS_REASKED:
                for raw, why in failing[MAX_CLAIMS_REASKED:]:
                    self._drop(raw, why)  # not worth a re-ask the size of a book
                failing = failing[:MAX_CLAIMS_REASKED]
            if attempt < self.attempts:
                errors = [f'claim "{_text(w, "claim")[:120]}": {why}' for w, why in failing]
                self._reask(content, self.prompts.reask_claims_message(errors))
        if failing is None:
            raise ExtractionFailed(
                f"the model's answer could not be read after {self.attempts} attempts: "
                f"{unreadable}",
                self.calls,
            )
        for raw, why in failing:
            self._drop(raw, why)
        return kept

    def _drop(self, raw: Any, why: str) -> None:
        key = json.dumps(raw, sort_keys=True, default=str)
        if key in self._dropped:
            return  # the same claim, sent again after it was dropped: counted once
        self._dropped.add(key)
        self.dropped += 1
        self.drop_reasons.append(f'"{_text(raw, "claim")[:120]}": {why}')

    def _drop_many(self, count: int, why: str) -> None:
        self.dropped += count
        self.drop_reasons.append(f"{count} claims: {why}")

    async def _ask(self, attempt: int) -> str | None:
        try:
            record = await self.client.chat(self.messages, response_schema())
        except ModelOutputError as exc:
            self._log(exc.record, attempt)
            return None
        except ModelCallError as exc:
            self._log(exc.record, attempt)
            if exc.record.finish_reason == "length":
                raise _CutOff from None
            raise ExtractionFailed(exc.reason, self.calls, fatal=exc.fatal) from None
        self._log(record, attempt)
        return record.content

    def _log(self, record: CallRecord, attempt: int) -> None:
        for call in [*record.fallbacks, record]:
            call.attempt = attempt
            self.calls.append(call)

    def _reask(self, content: str | None, instruction: str) -> None:
        if content:
            self.messages = [*self.messages, {"role": "assistant", "content": content[:8000]}]
        self.messages = [*self.messages, {"role": "user", "content": instruction}]

    def _validate(self, proposed: list[Any]) -> tuple[list[ExtractedClaim], list[tuple[Any, str]]]:
        """Each proposed claim: grounded, well-formed and supported by its quote, or the
        reason it is not."""
        valid, invalid = [], []
        window = (self.chunk.start, self.chunk.end)
        for raw in proposed:
            if not isinstance(raw, dict):
                invalid.append((raw, "a claim must be an object with a quote and a claim"))
                continue
            try:
                claim = ExtractedClaim.from_answer(raw, self.article, window)
            except ValidationError as exc:
                invalid.append((raw, _short(exc)))
                continue
            near = paragraphs_around(self.article.text, claim.quote_start, claim.quote_end)
            if why := unsupported(claim.text, claim.quote, near, self.context):
                invalid.append((raw, why))
                continue
            valid.append(claim)
        return valid, invalid


# --- Merging --------------------------------------------------------------------------
