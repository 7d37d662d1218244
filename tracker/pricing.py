"""What tokens cost, where the model's price is known or configured."""

from __future__ import annotations

from tracker.config import Settings

# US dollars per million tokens (input, output), from OpenAI's public price list.
# TRACKER_PRICE_INPUT_PER_MTOK / TRACKER_PRICE_OUTPUT_PER_MTOK override or add a model.
KNOWN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}


def price(settings: Settings) -> tuple[float, float] | None:
    if settings.price_input_per_mtok is not None and settings.price_output_per_mtok is not None:
        return settings.price_input_per_mtok, settings.price_output_per_mtok
    if settings.openai_base_url and "api.openai.com" not in settings.openai_base_url:
        return None  # a local or third-party server: its own prices, if any
    return KNOWN_PRICES.get(settings.model)


# The Batch API bills its requests at half the price of ordinary calls.
BATCH_PRICE_SHARE = 0.5


def cost_usd(
    settings: Settings,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    batch_prompt_tokens: int = 0,
    batch_completion_tokens: int = 0,
) -> float | None:
    """What the tokens cost; `batch_*`: how many of them a Batch API batch answered."""
    known = price(settings)
    if known is None:
        return None
    full = prompt_tokens * known[0] + completion_tokens * known[1]
    batched = batch_prompt_tokens * known[0] + batch_completion_tokens * known[1]
    return round((full - batched * (1 - BATCH_PRICE_SHARE)) / 1_000_000, 6)
