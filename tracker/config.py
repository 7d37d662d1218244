"""Settings, read from the environment and an optional `.env` file.

The variable names `TRACKER_DATABASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL` and
`TRACKER_MODEL` are a public contract: deployments and docs rely on them.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import typer
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "claim-tracker"
MIN_SECRET_CHARS = 8
# Keys local servers are given because the SDK insists on one: not secrets.
PLACEHOLDERS = frozenset(
    ["none", "null", "empty", "unused", "ollama", "lm-studio", "lmstudio", "no-key",
     "nokey", "dummy", "placeholder", "not-needed", "sk-no-key-required", "changeme"]
)  # fmt: skip


def default_database_url() -> str:
    """One SQLite file per user, so the CLI and the dashboard share it from any directory."""
    return f"sqlite:///{Path(typer.get_app_dir(APP_NAME)) / 'tracker.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRACKER_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(default_factory=default_database_url)
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    model: str = "gpt-4.1-mini"

    # Extraction tuning.
    temperature: float = 0.0
    max_output_tokens: int = Field(default=4096, gt=0)
    chunk_chars: int = Field(default=12_000, ge=500, description="Longest chunk sent at once.")
    chunk_overlap_chars: int = Field(default=1_000, ge=0)
    max_reasks: int = Field(default=2, ge=0, description="Re-asks after ungrounded or bad output.")

    # Which extractor: the configured model ("llm"), the built-in one ("offline"), or
    # "auto": the model when one is configured, else offline.
    extractor: Literal["auto", "llm", "offline"] = "auto"
    offline_threshold: float | None = Field(default=None, ge=0, le=1)
    prefilter: float | None = Field(default=None, ge=0, le=1)

    # Batch import.
    concurrency: int = Field(default=8, ge=1, le=256, description="Model requests at once")
    max_article_bytes: int = Field(default=10_000_000, gt=0, description="Per file or line")
    # Seconds an import holds an article it is extracting (renewed while it works), so
    # that another import does not extract it too (tracker/lease.py).
    worker_lease: float = Field(default=300.0, gt=0)
    # `tracker import --batch-api`: seconds between two looks at a running batch (the wait
    # grows from this up to ten times it; a batch takes minutes to hours).
    batch_poll_interval: float = Field(default=30.0, gt=0)
    # The most one batch holds: the Batch API refuses over 50,000 requests or a 200 MB
    # input file, so a run splits its requests into several batches within these.
    batch_max_requests: int = Field(default=50_000, gt=0)
    batch_max_bytes: int = Field(default=190_000_000, gt=0)
    price_input_per_mtok: float | None = Field(default=None, ge=0)
    price_output_per_mtok: float | None = Field(default=None, ge=0)

    # Dashboard people: names listed here are admins; others get the default role
    # until an admin gives them another.
    admins: str = ""
    default_role: Literal["viewer", "reviewer", "admin"] = "reviewer"
    # Without a login, a typed name is not verified: it gets no more than the default role
    # unless this is set (a single-user or fully trusted deployment).
    trust_typed_names: bool = False

    @property
    def admin_names(self) -> set[str]:
        return {name.strip().casefold() for name in self.admins.split(",") if name.strip()}

    # Claim matching: suggest earlier claims that score at least this (0-1), and link at once
    # those that score at least the second.
    match_suggest: float = Field(default=0.75, ge=0, le=1)
    match_link: float = Field(default=0.95, ge=0, le=1)

    # ClaimReview publishing: who publishes, and where each fact-check lives
    # (a template with {id}, e.g. https://factcheck.example.org/claims/{id}).
    publisher_name: str | None = None
    publisher_url: str | None = None
    review_url_template: str | None = None

    # Structured output: "auto" negotiates (json_schema, then json_object, then prompt).
    response_format: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"

    # HTTP behaviour; the SDK retries 408/409/429/5xx and timeouts itself.
    max_retries: int = Field(default=4, ge=0)
    request_timeout: float = Field(default=120.0, gt=0)

    # Monitoring (`tracker watch`): fetching feeds and their pages politely.
    user_agent: str = Field(
        default="ClaimTracker/0.1 (fact-checking feed monitor)",
        min_length=1,
        max_length=300,
        description="Sent with every request; add a contact address for site owners",
    )
    fetch_timeout: float = Field(default=20.0, gt=0, description="Seconds for a whole response")
    fetch_max_bytes: int = Field(default=5_000_000, gt=0, description="Per feed or page")
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    host_interval: float = Field(
        default=2.0, ge=0, description="Seconds between two requests to the same host"
    )
    watch_interval: float = Field(default=900.0, gt=0, description="Seconds between passes")
    feed_backoff: float = Field(
        default=300.0, gt=0, description="First wait after a feed fails; doubles, up to 6 h"
    )
    # Alerts: a JSON POST per alert (Slack-compatible). The URL itself is a secret.
    alert_webhook: SecretStr | None = None
    dashboard_url: str = Field(
        default="http://localhost:8501", description="Where alerts link to the claim page"
    )

    @model_validator(mode="after")
    def _overlap_below_half_a_chunk(self) -> Settings:
        if self.chunk_overlap_chars * 2 > self.chunk_chars:
            raise ValueError(
                "TRACKER_CHUNK_OVERLAP_CHARS must be at most half of TRACKER_CHUNK_CHARS "
                f"(now {self.chunk_overlap_chars} and {self.chunk_chars})"
            )
        return self

    @property
    def model_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def uses_offline(self) -> bool:
        return self.extractor == "offline" or (
            self.extractor == "auto" and not self.model_configured
        )

    @property
    def safe_base_url(self) -> str:
        """The base URL without any user:password part, fit for logs and the database."""
        return redact_url(self.openai_base_url or "https://api.openai.com/v1")

    def secrets(self) -> list[str]:
        """Values that must never appear in anything we store or show: the key, the base
        URL's user name, password (and the Basic authorisation header they make) and query
        values. Placeholders a local server is given ("none", "EMPTY", "lm-studio") and
        values shorter than MIN_SECRET_CHARS are no secrets: scrubbing them would rewrite
        ordinary words of articles and claims ("none of the 40 buses")."""
        found = []
        if self.openai_api_key and self.openai_api_key.get_secret_value():
            found.append(self.openai_api_key.get_secret_value())
        if self.openai_base_url:
            parts = urlsplit(self.openai_base_url)
            found += [parts.username or "", parts.password or ""]
            if parts.username or parts.password:
                pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
                found.append(base64.b64encode(pair.encode()).decode())
            found += [value for _, value in parse_qsl(parts.query)]
        if self.alert_webhook and (hook := self.alert_webhook.get_secret_value()):
            found += webhook_secrets(hook)
        found += [unquote(secret) for secret in found]
        return sorted(
            {s for s in found if len(s) >= MIN_SECRET_CHARS and s.casefold() not in PLACEHOLDERS},
            key=len,
            reverse=True,  # the longest first: a password inside its Basic form goes with it
        )

    @property
    def client_base_url(self) -> str | None:
        """The base URL the SDK is given: without its query string, which the SDK would
        put between the path and "chat/completions" (`client_query` sends it instead)."""
        if not self.openai_base_url:
            return None
        return urlunsplit(urlsplit(self.openai_base_url)._replace(query=""))

    @property
    def client_query(self) -> dict[str, str]:
        """The base URL's query (`?api-key=...`), sent with every request."""
        if not self.openai_base_url:
            return {}
        return dict(parse_qsl(urlsplit(self.openai_base_url).query))


def webhook_secrets(url: str) -> list[str]:
    """What of a webhook URL must never be shown: all of it but the scheme and host (a
    Slack or Teams webhook's path is its key), longest first so that scrubbing the whole
    URL wins over its parts."""
    parts = urlsplit(url)
    found = [url, parts.password or "", parts.path if len(parts.path) > 1 else ""]
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= 6]
    found += [  # a token on its own (a word like "services" is not one)
        segment
        for segment in parts.path.split("/")
        if len(segment) >= 20 or (len(segment) >= 8 and any(ch.isdigit() for ch in segment))
    ]
    return sorted({s for s in found if s}, key=len, reverse=True)


def redact_url(url: str) -> str:
    """`url` without user:password or query string, either of which may carry a key."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    if parts.query:
        parts = parts._replace(query="[redacted]")
    return urlunsplit(parts)


@lru_cache
def get_settings() -> Settings:
    return Settings()


NO_MODEL_MESSAGE = """No language model is configured, and --extractor llm asks for one.

Configure one in the environment or in a .env file in this directory:
  OpenAI:                       OPENAI_API_KEY=sk-...
  a local OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio):
                                OPENAI_BASE_URL=http://localhost:11434/v1
                                TRACKER_MODEL=llama3.1
Then run the import again. Without a model, `--extractor auto` (the default) uses the
built-in offline extractor."""
