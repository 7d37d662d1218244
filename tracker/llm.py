"""One chat-completion request to an OpenAI-compatible server, logged and classified.

Transient faults (429, 5xx, timeouts, dropped connections) are retried by the SDK itself
(`TRACKER_MAX_RETRIES`); what is left when it gives up becomes a `ModelError` with a
reason a fact-checker can act on. Secrets are scrubbed from every text we keep or show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from tracker.config import Settings
from tracker.sanitize import scrub, storable

if TYPE_CHECKING:  # the SDK is imported when the first request is made: a CLI that needs
    import httpx2  # no model (export, stats, a re-import) starts faster without it
    import openai


class ModelError(Exception):
    """The model gave no usable answer for this request.

    `fatal` marks configuration faults (bad key, unknown model, no server) that will fail
    every other article the same way, so a batch can stop instead of burning through them.
    """

    def __init__(self, reason: str, *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal


@dataclass
class CallRecord:
    """What we keep of one request: the body we sent and what came back (never headers)."""

    model: str
    base_url: str
    response_format: str
    request: dict[str, Any]
    response: str | None = None
    status_code: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    finish_reason: str | None = None
    refusal: str | None = None
    error: str | None = None
    attempt: int = 1
    retries: int = 0
    content: str | None = field(default=None, repr=False)
    batch_id: str | None = None  # the Batch API batch that answered it (billed at half price)
    # Calls refused for their response format just before this one (logged with it).
    fallbacks: list[CallRecord] = field(default_factory=list, repr=False)

    def request_json(self) -> str:
        return json.dumps(self.request, ensure_ascii=False)


class RateGate:
    """How many requests may be in flight at once, shared by every request of a run.

    A 429 halves the limit and pauses new requests for the server's Retry-After; each
    success raises the limit again by a little (additive increase, multiplicative
    decrease), so a batch slows down to what the server accepts instead of failing.
    """

    def __init__(self, limit: int) -> None:
        self.max = max(1, limit)
        self.limit = float(self.max)
        self.in_flight = 0
        self.resume_at = 0.0
        self.throttles = 0
        self._changed: asyncio.Condition | None = None

    @property
    def _cond(self) -> asyncio.Condition:
        if self._changed is None:  # created inside the running event loop
            self._changed = asyncio.Condition()
        return self._changed

    async def __aenter__(self) -> None:
        async with self._cond:
            while True:
                pause = self.resume_at - time.monotonic()
                if pause <= 0 and self.in_flight < int(self.limit):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), pause if pause > 0 else None)
            self.in_flight += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def throttled(self, retry_after: float | None) -> None:
        self.throttles += 1
        self.limit = max(1.0, self.limit / 2)
        self.resume_at = max(self.resume_at, time.monotonic() + min(retry_after or 1.0, 60.0))

    def succeeded(self) -> None:
        self.limit = min(float(self.max), self.limit + 1 / self.limit)

    async def on_response(self, response: httpx2.Response) -> None:
        """httpx event hook: sees every HTTP response, the SDK's retries included. A 429
        that says the account has no quota left is no rate limit: waiting will not help,
        so the SDK is told not to retry it (and it stops the batch: `_reasons`)."""
        if response.status_code == 429:
            await response.aread()  # (a short error body)
            if _out_of_quota(response.text):
                response.headers["x-should-retry"] = "false"
                return
            self.throttled(_retry_after(response.headers))
        elif response.status_code < 400:
            self.succeeded()


def _out_of_quota(body: str) -> bool:
    """An error body of OpenAI's (and compatible servers') "insufficient_quota"."""
    return "insufficient_quota" in body[:10_000]


def _retry_after(headers: httpx2.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            return float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
    return None


def make_client(settings: Settings, gate: RateGate | None = None) -> openai.AsyncOpenAI:
    """The SDK client; a local server without a key gets a placeholder the SDK insists on."""
    import httpx2
    import openai

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
    hooks = {"response": [gate.on_response]} if gate else {}
    # No more connections than requests in flight: the pool checks every idle one per request.
    connections = gate.max if gate else 4
    http_client = openai.DefaultAsyncHttpxClient(
        event_hooks=hooks,
        limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.client_base_url,
        default_query=settings.client_query or None,
        max_retries=settings.max_retries,
        timeout=settings.request_timeout,
        http_client=http_client,
    )


FORMATS = ("json_schema", "json_object", "prompt")
REFUSED = "the server refused response_format"  # how a refusal is logged (and recognised)
_NEGOTIATED: dict[str, str] = {}  # base URL -> the format it accepted, for this process


def _refuses_format(record: CallRecord) -> bool:
    """A 400/422/500-like refusal whose message names the response format, or the very
    format asked for (json_schema, json_object)."""
    code = record.status_code or 0
    if code < 400 or code in (401, 403, 404, 429):
        return False
    body = (record.response or "").lower()
    return "response_format" in body or record.response_format in body


def _sdk_would_retry(exc: ModelCallError) -> bool:
    """No answer, or an HTTP status the SDK retries (408, 409, 429, 5xx)."""
    code = exc.record.status_code
    return not exc.fatal and (code is None or code in (408, 409, 429) or code >= 500)


def _with_schema_in_prompt(messages: list[dict[str, str]], schema: dict[str, Any]) -> list:
    """The messages with the JSON schema spelled out in the system prompt."""
    instruction = (
        "\n\nAnswer with one JSON object, and nothing else, that is valid against this JSON "
        f"schema:\n{json.dumps(schema, separators=(',', ':'))}"
    )
    first, *rest = messages
    return [{**first, "content": first["content"] + instruction}, *rest]


def request_body(
    settings: Settings, messages: list[dict[str, str]], schema: dict[str, Any], fmt: str
) -> dict[str, Any]:
    """The JSON body of a chat-completion request in response format `fmt`: what an
    ordinary call sends, and what a Batch API request line carries (tracker/apibatch.py)."""
    body: dict[str, Any] = {"model": settings.model, "messages": messages}
    if fmt == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "claims", "strict": True, "schema": schema},
        }
    elif fmt == "json_object":
        body["response_format"] = {"type": "json_object", "schema": schema}
    else:
        body["messages"] = _with_schema_in_prompt(messages, schema)
    body["temperature"] = settings.temperature
    body["max_tokens"] = settings.max_output_tokens
    return body


class _OutOfQuota:
    """Stands for a RateLimitError whose body says insufficient_quota (see `_classify`)."""


@cache
def _reasons() -> list[tuple[type, str, bool]]:
    """Checked in order; the first class that matches gives the reason."""
    import openai

    return [
        (
            openai.APITimeoutError,
            "the model server at {where} did not answer in time ({retries} retries)",
            False,
        ),
        (openai.APIConnectionError, "could not reach the model server at {where}: {message}", True),
        (openai.AuthenticationError, "the model server refused the API key (401): {message}", True),
        (openai.PermissionDeniedError, "the model server denied access (403): {message}", True),
        (
            openai.NotFoundError,
            "model {model!r} not found at {where} (404), check TRACKER_MODEL: {message}",
            True,
        ),
        (
            _OutOfQuota,
            "the model server says the account has no quota left (429 insufficient_quota): "
            "add credit or check the plan and billing, then run the import again: {message}",
            True,
        ),
        (
            openai.RateLimitError,
            "still rate limited (429) after {retries} retries: {message}",
            False,
        ),
        (
            openai.InternalServerError,
            "the model server failed (HTTP {code}) after {retries} retries: {message}",
            False,
        ),
    ]


class ModelClient:
    """Requests to the configured model, at most `concurrency` at a time.

    Create it inside the event loop that uses it (the SDK's async client is bound to one).
    """

    def __init__(
        self,
        settings: Settings,
        client: openai.AsyncOpenAI | None = None,
        *,
        concurrency: int = 8,
        known_format: str | None = None,
    ) -> None:
        """`known_format`: the response format this server accepted before (call log)."""
        self.settings = settings
        self.gate = RateGate(concurrency)
        self._client = client
        forced = None if settings.response_format == "auto" else settings.response_format
        self.negotiable = forced is None
        self.format = (
            forced or _NEGOTIATED.get(settings.safe_base_url) or known_format or FORMATS[0]
        )
        self.confirmed = forced is not None or self.format in (
            _NEGOTIATED.get(settings.safe_base_url),
            known_format,
        )

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = make_client(self.settings, self.gate)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def chat(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> CallRecord:
        """Send one request; return its record, or raise ModelError (its record attached).

        Structured output is asked for in the best format the server takes: strict
        `json_schema`, else `json_object` with the schema (llama-cpp-python), else JSON
        described in the prompt. A refusal that names the format moves one step down,
        for this and every later request to the same server.
        """
        refused: list[CallRecord] = []
        retry = False  # a probe failed for another reason: send again, SDK retries and all
        while True:
            fmt = self.format
            # Until a server has accepted a format, a request in it is a probe sent without
            # the SDK's retries: a refusal (llama-cpp-python answers HTTP 500) then costs
            # one request instead of 1 + TRACKER_MAX_RETRIES with back-off (~7 s).
            probe = not (self.confirmed or retry or fmt == FORMATS[-1])
            retries = 0 if probe else self.settings.max_retries - 1 if retry else None
            try:
                record = await self._chat_once(messages, schema, fmt, retries=retries)
            except ModelCallError as exc:
                following = FORMATS.index(fmt) + 1
                if self.negotiable and _refuses_format(exc.record) and following < len(FORMATS):
                    exc.record.error = f"{REFUSED} {fmt}: {exc.reason}"
                    refused.append(exc.record)
                    if self.format == fmt:
                        self.format = FORMATS[following]
                    retry = False
                    continue
                if probe and self.settings.max_retries and _sdk_would_retry(exc):
                    refused.append(exc.record)  # logged; sent again with the retries left
                    retry = True
                    continue
                exc.record.fallbacks = refused
                raise
            _NEGOTIATED[self.settings.safe_base_url] = fmt
            self.confirmed = True
            record.fallbacks = refused
            return record

    async def _chat_once(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        fmt: str,
        *,
        retries: int | None = None,
    ) -> CallRecord:
        """One request; `retries`: the SDK's retries for it (default: the setting)."""
        import openai

        body = request_body(self.settings, messages, schema, fmt)
        record = CallRecord(
            model=self.settings.model,
            base_url=self.settings.safe_base_url,
            response_format=fmt,
            request=body,
        )
        async with self.gate:
            started = time.monotonic()
            try:
                # Only the model goes through the SDK's typed transform; the rest (the
                # messages, a large JSON schema) is sent as is, in the same order: the
                # transform changes nothing in them and cost ~2 ms of CPU a call. (The
                # SDK requires `messages`: the empty list is replaced by the real ones.)
                client = self.client
                if retries is not None:
                    client = client.with_options(max_retries=retries)
                raw = await client.chat.completions.with_raw_response.create(
                    model=body["model"],
                    messages=[],
                    extra_body={k: v for k, v in body.items() if k != "model"},
                )
                record.retries = _retries(raw.http_response.request)
                record.status_code = raw.http_response.status_code
                record.response = self._scrub(raw.http_response.text)
                # An ordinary answer is read straight from its JSON; anything unusual goes
                # through the SDK's parse, as before.
                completion = _Answer.read(raw.http_response.content) or raw.parse()
            except openai.APIError as exc:
                record.latency_ms = round((time.monotonic() - started) * 1000)
                if isinstance(exc, openai.APIConnectionError | openai.APIStatusError):
                    record.retries = _retries(exc.request)
                if isinstance(exc, openai.APIStatusError):
                    record.status_code = exc.status_code
                    record.response = self._scrub(exc.response.text)
                reason, fatal = self._classify(exc)
                self._stop(record, reason, fatal=fatal)
            except (ValueError, TypeError) as exc:  # a 200 whose body is not a completion
                record.latency_ms = round((time.monotonic() - started) * 1000)
                reason = f"the model server sent a response that is not a chat completion ({exc})"
                record.error = self._scrub(reason)
                raise ModelOutputError(record.error, record) from None
            record.latency_ms = round((time.monotonic() - started) * 1000)
        return self._check(record, completion)

    def check_answer(self, record: CallRecord, body: Any) -> CallRecord:
        """A completion that came by another route (a Batch API output line), kept or
        refused by the same rules as the answer to a request made here."""
        from openai.types.chat import ChatCompletion
        from pydantic import ValidationError

        record.response = self._scrub(json.dumps(body, ensure_ascii=False))
        try:
            completion = ChatCompletion.model_validate(body)
        except ValidationError:
            record.error = "the model server sent a response that is not a chat completion"
            raise ModelOutputError(record.error, record) from None
        return self._check(record, completion)

    def _check(self, record: CallRecord, completion: Any) -> CallRecord:
        """Keep the usable answer; stop on refusals, cut-offs and filtered output."""
        from openai.types.chat import ChatCompletion

        if isinstance(completion, ChatCompletion):
            completion = _Answer.of(completion)
        if not isinstance(completion, _Answer):  # e.g. an HTML error page with a 200
            record.error = "the model server sent a response that is not a chat completion"
            raise ModelOutputError(record.error, record)
        if completion.usage:
            record.prompt_tokens = token_count(completion.prompt_tokens)
            record.completion_tokens = token_count(completion.completion_tokens)
        if not completion.choices:
            record.error = "the model server answered with no choices"
            raise ModelOutputError(record.error, record)
        # Whatever the server sent, as a database can store it (a NUL, half a UTF-16 pair).
        choice = completion
        record.finish_reason = _text(choice.finish_reason, 64)
        record.refusal = _text(choice.refusal)
        record.content = _text(choice.content)
        if record.refusal:
            self._stop(record, f"the model refused: {record.refusal}")
        if choice.finish_reason == "length":
            self._stop(
                record,
                "the model's answer was cut off at the output limit (finish_reason=length); "
                f"raise TRACKER_MAX_OUTPUT_TOKENS (now {self.settings.max_output_tokens}) "
                "or lower TRACKER_CHUNK_CHARS",
            )
        if choice.finish_reason == "content_filter":
            self._stop(record, "the model's content filter stopped the answer")
        return record

    def _scrub(self, text: str) -> str:
        return scrub(text, self.settings.secrets())

    def _stop(self, record: CallRecord, reason: str, *, fatal: bool = False) -> None:
        record.error = self._scrub(reason)
        raise ModelCallError(record.error, record, fatal=fatal)

    def _classify(self, exc: openai.APIError) -> tuple[str, bool]:
        """A reason a person can act on, and whether every other request will fail too."""
        facts = {
            "where": self.settings.safe_base_url,
            "retries": self.settings.max_retries,
            "model": self.settings.model,
            "message": _message(exc),
            "code": getattr(exc, "status_code", None),
        }
        import httpx2
        import openai

        quota = isinstance(exc, openai.RateLimitError) and _out_of_quota(
            json.dumps(getattr(exc, "body", None), default=str) + str(exc)
        )
        for kind, template, fatal in _reasons():
            if isinstance(exc, kind) or (kind is _OutOfQuota and quota):
                if kind is openai.APIConnectionError:
                    # Nothing listening (refused, unknown host) fails every article; a
                    # connection dropped mid-answer is a passing fault.
                    fatal = isinstance(exc.__cause__, httpx2.ConnectError)
                return template.format(**facts), fatal
        return "the model server rejected the request (HTTP {code}): {message}".format(
            **facts
        ), False


@dataclass
class _Answer:
    """What `_check` reads of a chat completion: its usage and its first choice."""

    usage: bool
    prompt_tokens: Any
    completion_tokens: Any
    choices: bool
    finish_reason: Any = None
    refusal: Any = None
    content: Any = None

    @classmethod
    def of(cls, completion: Any) -> _Answer:
        """From the SDK's ChatCompletion."""
        usage = completion.usage
        answer = cls(
            bool(usage),
            usage.prompt_tokens if usage else None,
            usage.completion_tokens if usage else None,
            bool(completion.choices),
        )
        if completion.choices:
            choice = completion.choices[0]
            answer.finish_reason = choice.finish_reason
            answer.refusal, answer.content = choice.message.refusal, choice.message.content
        return answer

    @classmethod
    def read(cls, body: bytes) -> _Answer | None:
        """From a response body that is an ordinary chat completion (JSON, its fields of
        the types the API gives them), as the SDK would read it; None for anything else,
        which is left to the SDK (its parse decides what an odd body becomes)."""
        try:
            data = json.loads(body)
        except Exception:  # not JSON (or nested too deeply)
            return None
        if not isinstance(data, dict):
            return None
        usage, choices = data.get("usage"), data.get("choices")
        if not isinstance(choices, list):
            return None
        tokens = (None, None)
        if usage is not None:  # (the SDK would coerce "12" or 12.0 to 12: left to it)
            if not isinstance(usage, dict):
                return None
            tokens = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
            if not all(type(count) is int for count in tokens):
                return None
        answer = cls(usage is not None, *tokens, bool(choices))
        if choices:
            choice = choices[0]
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict) or "finish_reason" not in choice:
                return None
            fields = (choice["finish_reason"], message.get("refusal"), message.get("content"))
            if not all(value is None or isinstance(value, str) for value in fields):
                return None
            answer.finish_reason, answer.refusal, answer.content = fields
        return answer


MAX_TOKEN_COUNT = 2**31 - 1  # an INTEGER column: PostgreSQL refuses more


def token_count(value: Any) -> int | None:
    """A token count a server reported, if it is one a database column can hold (a server
    that says 3,000,000,000 tokens is wrong, and must not make the call unstorable)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_TOKEN_COUNT else None


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = storable(value if isinstance(value, str) else str(value))
    return text[:limit] if limit else text


class ModelCallError(ModelError):
    """The request failed or the answer must not be used; `record` says what happened."""

    def __init__(self, reason: str, record: CallRecord, *, fatal: bool = False) -> None:
        super().__init__(reason, fatal=fatal)
        self.record = record


class ModelOutputError(ModelCallError):
    """The server answered, but not with a usable completion; worth asking again."""


def _retries(request: httpx2.Request | None) -> int:
    """How many times the SDK retried: it numbers its attempts in a request header."""
    try:
        return int(request.headers.get("x-stainless-retry-count", 0)) if request else 0
    except (ValueError, RuntimeError):
        return 0


def _message(exc: openai.APIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
    elif isinstance(body, str):
        message = body
    else:
        message = str(exc) or type(exc).__name__
    return message[:500]
