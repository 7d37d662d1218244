"""Article text in, grounded and de-duplicated claims out (no database here).

Per chunk: ask, validate every claim against the article, re-ask about the claims that
failed (bounded by `TRACKER_MAX_REASKS`), and drop and count what still fails. A chunk
whose answer cannot be read at all is re-asked the same way; when attempts run out, or
the server refuses, the whole article fails with the reason.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass

from pydantic import ValidationError

from tracker.chunking import Chunk, split_into_chunks
from tracker.config import Settings
from tracker.grounding import ArticleIndex
from tracker.llm import CallRecord, ModelCallError, ModelClient, ModelOutputError
from tracker.prompts import PromptSet, load_prompts
from tracker.schemas import ExtractedClaim, WireAnswer, WireClaim, response_schema

_CODE_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class ExtractionFailed(Exception):
    """No claims could be extracted from this article; `reason` says why."""

    def __init__(self, reason: str, calls: list[CallRecord], *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.calls = calls
        self.fatal = fatal


@dataclass
class ExtractionResult:
    claims: list[ExtractedClaim]
    dropped: int
    calls: list[CallRecord]
    model: str
    prompt_hash: str
    chunks: int = 1


async def extract_claims(
    text: str, *, title: str | None, client: ModelClient, settings: Settings
) -> ExtractionResult:
    """The grounded claims of one article, or ExtractionFailed.

    Chunks are asked one after the other (articles run concurrently in a batch), so a
    conversation and its recording stay in a fixed order.
    """
    prompts = load_prompts()
    article = ArticleIndex(text)
    if settings.prefilter is not None:
        chunks = _prefiltered_chunks(text, settings)
    else:
        chunks = split_into_chunks(text, settings.chunk_chars, settings.chunk_overlap_chars)
    calls: list[CallRecord] = []
    found: list[ExtractedClaim] = []
    result = ExtractionResult([], 0, calls, settings.model, prompts.hash, chunks=len(chunks))
    for number, chunk in enumerate(chunks, 1):
        messages = [
            {"role": "system", "content": prompts.system},
            {
                "role": "user",
                "content": prompts.user_message(
                    title=title, text=chunk.text, part=number, parts=len(chunks)
                ),
            },
        ]
        session = _ChunkSession(client, prompts, article, chunk, messages, calls, settings)
        found.extend(await session.run())
        result.dropped += session.dropped
    result.claims = sorted(merge_claims(found), key=lambda c: (c.quote_start, c.quote_end))
    return result


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


def parse_answer(content: str | None) -> WireAnswer:
    """The model's JSON answer, tolerating a Markdown code fence around it."""
    if content is None or not content.strip():
        raise ValueError("the answer was empty")
    fenced = _CODE_FENCE.match(content)
    return WireAnswer.model_validate_json(fenced.group(1) if fenced else content)


def _short(error: ValidationError | ValueError) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return f"{where}: {first['msg']}" + (
            f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        )
    return str(error)


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
    ) -> None:
        self.client, self.prompts, self.article, self.chunk = client, prompts, article, chunk
        self.messages, self.calls = messages, calls
        self.attempts = settings.max_reasks + 1
        self.dropped = 0

    async def run(self) -> list[ExtractedClaim]:
        kept: list[ExtractedClaim] = []
        failing: list[tuple[WireClaim, str]] | None = None  # None: no readable answer yet
        unreadable = ""
        for attempt in range(1, self.attempts + 1):
            content = await self._ask(attempt)
            try:
                answer = parse_answer(content) if content is not None else None
            except (ValidationError, ValueError) as exc:
                answer, unreadable = None, _short(exc)
            if answer is None:  # unreadable: ask again; claims failing so far stay failing
                unreadable = unreadable or "the server's response was not a chat completion"
                self._reask(content, self.prompts.reask_format_message(unreadable))
                continue
            valid, invalid = self._validate(answer.claims)
            kept.extend(valid)
            if failing is not None:  # a re-ask: which failing claims came back, and how?
                returned = [(v.text, v.quote) for v in valid] + [
                    (w.claim, w.quote) for w, _ in invalid
                ]
                for wire, _ in failing:
                    if not any(_resembles((wire.claim, wire.quote), r) for r in returned):
                        self.dropped += 1  # left out, as the re-ask allows: dropped
            failing = invalid
            if not failing:
                return kept
            if attempt < self.attempts:
                errors = [f'claim "{w.claim[:120]}": {why}' for w, why in failing]
                self._reask(content, self.prompts.reask_claims_message(errors))
        if failing is None:
            raise ExtractionFailed(
                f"the model's answer could not be read after {self.attempts} attempts: "
                f"{unreadable}",
                self.calls,
            )
        self.dropped += len(failing)
        return kept

    async def _ask(self, attempt: int) -> str | None:
        try:
            record = await self.client.chat(self.messages, response_schema())
        except ModelOutputError as exc:
            self._log(exc.record, attempt)
            return None
        except ModelCallError as exc:
            self._log(exc.record, attempt)
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

    def _validate(
        self, wires: list[WireClaim]
    ) -> tuple[list[ExtractedClaim], list[tuple[WireClaim, str]]]:
        valid, invalid = [], []
        window = (self.chunk.start, self.chunk.end)
        for wire in wires:
            try:
                valid.append(ExtractedClaim.from_wire(wire, self.article, window))
            except ValidationError as exc:
                invalid.append((wire, _short(exc)))
        return valid, invalid


# --- Merging --------------------------------------------------------------------------


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def _similar(a: str, b: str, threshold: float = 0.5) -> bool:
    wa, wb = _words(a), _words(b)
    return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= threshold


def _resembles(a: tuple[str, str], b: tuple[str, str]) -> bool:
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
