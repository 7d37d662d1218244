"""The constrained words of the domain (statuses, claim types, stances, ...), in a module
of their own so the CLI can check its options without loading the database layer. The
tables' CHECK constraints (tracker/models.py) are generated from these same tuples."""

from __future__ import annotations

from typing import Literal, get_args

ClaimStatus = Literal["unreviewed", "in_progress", "checked", "disputed", "inconclusive"]
ClaimType = Literal[
    "statistic", "quote_attribution", "event", "prediction", "causal", "position", "other"
]
Stance = Literal["supports", "refutes", "context"]
ExtractionState = Literal["pending", "extracted", "failed"]
Role = Literal["viewer", "reviewer", "admin"]
MatchState = Literal["suggested", "linked", "confirmed", "rejected"]
EntryState = Literal["pending", "stored", "failed"]  # a feed entry: its page read or not
AlertKind = Literal["claim", "fact_check"]  # what a repeated claim matched
WebhookState = Literal["off", "waiting", "sent", "failed"]
# A Batch API batch: "preparing" until the provider has it, then the provider's own
# statuses; "abandoned" when it never reached the provider (tracker/apibatch.py).
BatchStatus = Literal[
    "preparing", "validating", "in_progress", "finalizing", "completed", "failed", "expired",
    "cancelling", "cancelled", "abandoned",
]  # fmt: skip

CLAIM_STATUSES: tuple[str, ...] = get_args(ClaimStatus)
CLAIM_TYPES: tuple[str, ...] = get_args(ClaimType)
STANCES: tuple[str, ...] = get_args(Stance)
EXTRACTION_STATES: tuple[str, ...] = get_args(ExtractionState)
ROLES: tuple[str, ...] = get_args(Role)
MATCH_STATES: tuple[str, ...] = get_args(MatchState)
ENTRY_STATES: tuple[str, ...] = get_args(EntryState)
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
WEBHOOK_STATES: tuple[str, ...] = get_args(WebhookState)
BATCH_STATUSES: tuple[str, ...] = get_args(BatchStatus)
