"""What the model must answer (the wire schema) and what we accept from it (the domain).

The wire models carry no validators and no constraints a server's JSON-schema engine
might not know: they only describe the shape, so the strict `json_schema` response format
works with OpenAI and the compatible servers alike. Everything we require of a claim is
checked afterwards by `ExtractedClaim`, with the article as validation context.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tracker.grounding import ArticleIndex
from tracker.models import ClaimType
from tracker.sanitize import storable, strip_bidi

# --- Wire -----------------------------------------------------------------------------


class WireClaim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote: str  # first, so the model copies the words before it rephrases them
    claim: str
    claimant: str | None
    claim_type: ClaimType
    checkworthiness: float


class WireAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claims: list[WireClaim]


@cache
def response_schema() -> dict[str, Any]:
    """The JSON schema sent with `response_format`; every object closed, every key required."""
    return WireAnswer.model_json_schema()


# --- Domain ---------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # never stored: PostgreSQL refuses NUL
_HONORIFICS = re.compile(r"^(mr|mrs|ms|dr|sir|dame)\.?\s+", re.IGNORECASE)
_NO_CLAIMANT = {"", "null", "none", "n/a", "unknown", "the article", "article", "author"}
_TYPE_ALIASES = {
    "quote": "quote_attribution",
    "attribution": "quote_attribution",
    "statistics": "statistic",
    "statistical": "statistic",
    "number": "statistic",
    "causation": "causal",
    "cause": "causal",
    "policy": "position",
    "stance": "position",
    "quote_attribution": "quote_attribution",
    "quotation": "quote_attribution",
    "predictions": "prediction",
    "events": "event",
    "forecast": "prediction",
}


MAX_CLAIMANT_CHARS = 200  # indexed: PostgreSQL refuses an index entry over ~2,700 bytes


def normalise_claimant(name: str | None) -> str | None:
    """One spelling per claimant: no stray quotes, titles like "Mr.", or doubled spaces;
    at most MAX_CLAIMANT_CHARS characters (a name, not a paragraph)."""
    if name is None:
        return None
    name = unicodedata.normalize("NFKC", strip_bidi(_CONTROL.sub("", storable(name))))
    name = re.sub(r"\s+", " ", name).strip(" \"'“”‘’.,;:")
    name = _HONORIFICS.sub("", name)
    if len(name) > MAX_CLAIMANT_CHARS:
        name = name[:MAX_CLAIMANT_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    return None if name.casefold() in _NO_CLAIMANT else name


class ExtractedClaim(BaseModel):
    """A claim that passed every check: grounded in the article, in range, well-formed.

    Validate with `context={"article": ArticleIndex, "window": (start, end)}`; the
    offsets are computed here, never taken from the model.
    """

    text: str = Field(min_length=8, max_length=2000)
    quote: str
    quote_start: int = Field(ge=0)
    quote_end: int
    claimant: str | None = None
    claim_type: ClaimType = "other"
    checkworthiness: float = Field(ge=0, le=1)
    offline_score: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _ground(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not info.context or "article" not in info.context:
            raise ValueError("an ExtractedClaim is validated with the article as context")
        article: ArticleIndex = info.context["article"]
        quote = data.get("quote")
        if not isinstance(quote, str) or not quote.strip():
            raise ValueError("the quote is empty")
        span = article.locate(quote, info.context.get("window"))
        if span is None:
            raise ValueError(f"the quote is not in the article word for word: {quote[:200]!r}")
        start, end = span
        return {**data, "quote": article.text[start:end], "quote_start": start, "quote_end": end}

    @field_validator("text")
    @classmethod
    def _tidy_text(cls, value: str) -> str:
        return re.sub(r"\s+", " ", strip_bidi(_CONTROL.sub("", storable(value)))).strip()

    @field_validator("claimant", mode="before")
    @classmethod
    def _tidy_claimant(cls, value: Any) -> Any:
        return normalise_claimant(value) if isinstance(value, str) or value is None else value

    @field_validator("claim_type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = re.sub(r"[\s-]+", "_", value.strip().lower())
            return _TYPE_ALIASES.get(value, value)
        return value

    @classmethod
    def from_wire(
        cls, wire: WireClaim, article: ArticleIndex, window: tuple[int, int] | None = None
    ) -> ExtractedClaim:
        return cls.from_answer(wire.model_dump(), article, window)

    @classmethod
    def from_answer(
        cls, raw: dict[str, Any], article: ArticleIndex, window: tuple[int, int] | None = None
    ) -> ExtractedClaim:
        """One claim as the model wrote it (a dict of its answer): keys it should not have
        are ignored, a missing claimant or type gets the default, the type's spelling is
        normalised ("Statistic", "statistics"); what is still wrong raises ValidationError."""
        values = {
            "text": raw.get("claim"),
            "quote": raw.get("quote"),
            "claimant": raw.get("claimant"),
            "claim_type": raw.get("claim_type") or "other",
            "checkworthiness": raw.get("checkworthiness"),
        }
        for key, value in values.items():  # JSON may hold half a UTF-16 pair ("\\ud800")
            if isinstance(value, str):
                values[key] = storable(value)
        return cls.model_validate(values, context={"article": article, "window": window})
