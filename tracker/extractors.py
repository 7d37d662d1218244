"""One seam for every way claims are found: an Extractor takes an article's text and
returns its grounded claims (an ExtractionResult) or raises ExtractionFailed.

    the model          ModelExtractor   an OpenAI-compatible server (tracker/extract.py)
    the offline model  OfflineExtractor the built-in detector (tracker/offline.py)

`make_extractor(settings)` picks one from the settings; imports, workers, the dashboard and
`tracker eval` all go through it, so a third kind plugs in here and nowhere else.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from tracker.config import Settings
from tracker.results import ExtractionResult

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tracker.llm import ModelClient


class Extractor(Protocol):
    label: str  # for people: the model's name, or "the offline extractor"
    paid: bool  # whether it spends tokens (costs are shown for it)

    async def extract(self, text: str, *, title: str | None) -> ExtractionResult:
        """The article's claims; raises ExtractionFailed with the reason."""
        ...

    @property
    def throttles(self) -> int:
        """How often the server asked us to slow down (429)."""
        ...

    async def close(self) -> None: ...


class ModelExtractor:
    """Claims from a language model, each with the offline model's score as a second
    opinion."""

    paid = True

    def __init__(self, settings: Settings, client: ModelClient) -> None:
        self.settings, self.client = settings, client
        self.label = settings.model

    async def extract(self, text: str, *, title: str | None) -> ExtractionResult:
        from tracker.extract import extract_claims
        from tracker.offline import with_second_opinion

        result = await extract_claims(text, title=title, client=self.client, settings=self.settings)
        return with_second_opinion(result)

    @property
    def throttles(self) -> int:
        return self.client.gate.throttles

    async def close(self) -> None:
        await self.client.close()


class OfflineExtractor:
    """Claims from the built-in detector, in a thread: it is CPU work, and the event
    loop keeps serving the other articles meanwhile."""

    paid = False
    label = "the offline extractor"
    throttles = 0

    def __init__(self, settings: Settings) -> None:
        self.threshold = settings.offline_threshold

    async def extract(self, text: str, *, title: str | None) -> ExtractionResult:
        from tracker.offline import extract_offline

        return await asyncio.to_thread(extract_offline, text, threshold=self.threshold)

    async def close(self) -> None:
        return None


def make_extractor(
    settings: Settings, *, engine: Engine | None = None, concurrency: int = 1
) -> Extractor:
    """The extractor the settings ask for (TRACKER_EXTRACTOR: the model when one is
    configured, else offline). With `engine`, a model client starts from the response
    format the server accepted last time (from the call log)."""
    if settings.uses_offline:
        return OfflineExtractor(settings)
    from tracker.llm import ModelClient

    known = None
    if engine is not None:
        from tracker.ingest import known_response_format

        known = known_response_format(engine, settings)
    client = ModelClient(settings, concurrency=concurrency, known_format=known)
    return ModelExtractor(settings, client)
