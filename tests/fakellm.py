"""An OpenAI-compatible server on loopback, for tests, hand-written recordings and benchmarks.

It answers `POST /v1/chat/completions` with the scripted replies it is given, in order,
then with `respond(request)` (by default: one claim quoting the first sentence of the text
it was sent). It keeps every request body. `latency` delays every answer, and `fault`
can turn any request into a fault: "429" (with Retry-After), "500", "timeout" (answers
after `timeout_after` seconds), "truncated" (the body stops half way and the connection
closes), "invalid" (a 200 that is not JSON), "drop" (the connection closes unanswered).
Run it standalone for manual trials: `python -m tests.fakellm --port 8765 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def completion(
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    prompt_tokens: int = 900,
    completion_tokens: int = 300,
) -> Reply:
    """A 200 chat completion carrying `content`."""
    return Reply(
        body={
            "id": "chatcmpl-handwritten",
            "object": "chat.completion",
            "created": 1764000000,
            "model": "gpt-4.1-mini-2025-04-14",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def claims_reply(*claims: dict[str, Any], **kwargs: Any) -> Reply:
    """A completion whose content is `{"claims": [...]}`; each claim needs a quote and
    claim text, the other keys default to plausible values."""
    full = [
        {"claimant": None, "claim_type": "event", "checkworthiness": 0.7, **claim}
        for claim in claims
    ]
    return completion(json.dumps({"claims": full}), **kwargs)


def error(status: int, message: str, *, retry_after_ms: int | None = 1) -> Reply:
    headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
    return Reply(
        status=status,
        body={"error": {"message": message, "type": "server_error", "code": None}},
        headers=headers,
    )


def article_text(request: dict[str, Any]) -> str:
    """The article text inside a request's user message."""
    for message in request.get("messages", []):
        content = message.get("content") or ""
        if message.get("role") == "user" and "<<<\n" in content:
            return content.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
    return ""


def first_sentence_claim(request: dict[str, Any]) -> Reply:
    """One claim quoting the first sentence of the text (deterministic, always grounded)."""
    text = article_text(request)
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0] if text.strip() else ""
    if len(sentence.split()) < 3:
        return claims_reply()
    return claims_reply({"quote": sentence, "claim": sentence, "claim_type": "event"})


def sentence_claims(per_text: int = 5) -> Callable[[dict[str, Any]], Reply]:
    """A responder that claims up to `per_text` sentences of the text it is sent (the
    longer ones first), as real models answer with several claims per article."""

    def respond(request: dict[str, Any]) -> Reply:
        text = article_text(request)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if len(s.split()) >= 4]
        chosen = sorted(sentences, key=len, reverse=True)[:per_text]
        return claims_reply(
            *(
                {"quote": s, "claim": s, "claim_type": "statistic" if re.search(r"\d", s)
                 else "event", "checkworthiness": 0.7}
                for s in chosen
            )
        )  # fmt: skip

    return respond


Fault = Callable[[int, dict[str, Any]], str | None]


def every(n: int, kind: str) -> Fault:
    """A fault on every n-th request (the 1st, the n+1-th, ...)."""
    return lambda number, _body: kind if number % n == 1 else None


class FakeLLM:
    """`with FakeLLM([...]) as llm:` serves the replies at `llm.base_url`.

    An asyncio server (HTTP/1.1 keep-alive, parsed by h11) on its own thread, so that
    hundreds of slow answers at once cost it nothing and faults are exact to the byte.
    """

    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        respond: Callable[[dict[str, Any]], Reply] | None = None,
        latency: float = 0.0,
        fault: Fault | None = None,
        timeout_after: float = 2.0,
        port: int = 0,
    ) -> None:
        self.replies = list(replies or [])
        self.respond = respond
        self.latency = latency
        self.fault = fault
        self.timeout_after = timeout_after
        self.requests: list[dict[str, Any]] = []
        self.faults: list[str] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", self._port)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result()
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _next(self, body: dict[str, Any]) -> tuple[Reply | None, str | None]:
        self.requests.append(body)
        kind = self.fault(len(self.requests), body) if self.fault else None
        if kind:
            self.faults.append(kind)
            return None, kind
        if self.replies:
            return self.replies.pop(0), None
        if self.respond:
            return self.respond(body), None
        return error(500, "the fake server has no scripted reply left", retry_after_ms=None), None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        try:
            while (raw := await _read_request(connection, reader)) is not None:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", "replace")}
                reply, kind = self._next(body)
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    keep_open = await self._answer(connection, writer, body, reply, kind)
                finally:
                    self.in_flight -= 1
                if not keep_open or connection.our_state is h11.MUST_CLOSE:
                    break
                connection.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.CancelledError):
            pass  # a client that timed out and hung up is part of a test
        finally:
            writer.close()

    async def _answer(
        self,
        connection: h11.Connection,
        writer: asyncio.StreamWriter,
        body: dict[str, Any],
        reply: Reply | None,
        kind: str | None,
    ) -> bool:
        """Send the reply (or the fault); False when the connection must close."""
        await asyncio.sleep(self.latency + (reply.delay if reply else 0.0))
        if kind == "drop":
            return False
        if kind == "timeout":
            await asyncio.sleep(self.timeout_after)
            reply = first_sentence_claim(body)
        reply = (
            reply
            or {
                "429": error(429, "Rate limit reached for requests", retry_after_ms=50),
                "500": error(500, "The server had an error while processing your request."),
                "truncated": first_sentence_claim(body),
                "invalid": Reply(body="<html><body>502 Bad Gateway</body></html>"),
            }[kind]
        )
        payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        data = payload.encode("utf-8")
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(data))),
            *reply.headers.items(),
        ]
        writer.write(connection.send(h11.Response(status_code=reply.status, headers=headers)))
        if kind == "truncated":
            writer.write(data[: len(data) // 2])
            await writer.drain()
            return False
        writer.write(connection.send(h11.Data(data=data)))
        writer.write(connection.send(h11.EndOfMessage()))
        await writer.drain()
        return True


async def _read_request(connection: h11.Connection, reader: asyncio.StreamReader) -> bytes | None:
    """The next request's body, or None when the client closed the connection."""
    body = b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return body
        elif isinstance(event, h11.ConnectionClosed):
            return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with FakeLLM(respond=first_sentence_claim, latency=args.latency, port=args.port) as fake:
        print(f"serving at {fake.base_url}; Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
