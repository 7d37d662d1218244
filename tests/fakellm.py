"""An OpenAI-compatible server on loopback, for tests, hand-written recordings and benchmarks.

It answers `POST /v1/chat/completions` with the scripted replies it is given, in order,
then with `respond(request)` (by default: one claim quoting the first sentence of the text
it was sent). It keeps every request body. `latency` delays every answer, and `fault`
can turn any request into a fault: "429" (with Retry-After), "500", "timeout" (answers
after `timeout_after` seconds), "truncated" (the body stops half way and the connection
closes), "invalid" (a 200 that is not JSON), "drop" (the connection closes unanswered).

It also speaks the Batch API: `/v1/files` (a multipart upload; `GET /v1/files/{id}` and
`/v1/files/{id}/content`) and `/v1/batches` (create, list, retrieve, cancel). Each retrieve
moves a batch one step: validating -> in_progress -> finalizing -> completed; the lines
are answered (by the same scripted replies and `respond`) on leaving in_progress, a 200 to
the output file and any other status to the error file. `batch_outcome` scripts another
end: "failed" (refused while validating), "expired" (the first `batch_answered` lines are
answered, the rest expire into the error file); `batch_hold` keeps batches in_progress
until it is cleared; a cancelled batch answers its first `batch_answered` lines (none by
default) and leaves the rest out of both files, as OpenAI does.

Run it standalone for manual trials: `python -m tests.fakellm --port 8765 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
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
        batch_outcome: str = "completed",
        batch_answered: int | None = None,
        batch_hold: bool = False,
    ) -> None:
        self.replies = list(replies or [])
        self.respond = respond
        self.latency = latency
        self.fault = fault
        self.timeout_after = timeout_after
        self.batch_outcome = batch_outcome
        self.batch_answered = batch_answered
        self.batch_hold = batch_hold
        self.requests: list[dict[str, Any]] = []  # every model request, batched or not
        self.chat_requests: list[dict[str, Any]] = []  # those sent as ordinary calls
        self.batch_lines: list[dict[str, Any]] = []  # those answered inside a batch
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._batch_inputs: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
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
        self.chat_requests.append(body)
        kind = self.fault(len(self.requests), body) if self.fault else None
        if kind:
            self.faults.append(kind)
            return None, kind
        return self._reply(body), None

    def _reply(self, body: dict[str, Any]) -> Reply:
        if self.replies:
            return self.replies.pop(0)
        if self.respond:
            return self.respond(body)
        return error(500, "the fake server has no scripted reply left", retry_after_ms=None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        try:
            while (request := await _read_request(connection, reader)) is not None:
                head, raw = request
                path = head.target.decode("ascii", "replace").split("?", 1)[0]
                if not path.endswith("/chat/completions") and "/v1/" in path:
                    status, payload, kind = self._batch_api(head, path, raw)
                    await _send(connection, writer, status, payload, kind)
                    if connection.our_state is h11.MUST_CLOSE:
                        break
                    connection.start_next_cycle()
                    continue
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

    # --- The Batch API ---------------------------------------------------------------

    def _batch_api(self, head: h11.Request, path: str, raw: bytes) -> tuple[int, bytes, str]:
        """Files and batches: (status, body, content type)."""
        method = head.method.decode()
        parts = path.split("/v1/", 1)[1].strip("/").split("/")
        if parts == ["files"] and method == "POST":
            return _json(200, self._upload(head, raw))
        if parts[0] == "files" and len(parts) >= 2 and method == "GET":
            stored = self.files.get(parts[1])
            if stored is None:
                return _json(404, _not_found(f"No such File object: {parts[1]}"))
            if parts[2:] == ["content"]:
                return 200, stored["content"], "application/octet-stream"
            return _json(200, stored["object"])
        if parts == ["batches"] and method == "POST":
            return self._create_batch(json.loads(raw))
        if parts == ["batches"] and method == "GET":
            data = sorted(self.batches.values(), key=lambda b: -b["created_at"])
            return _json(200, {"object": "list", "data": data, "has_more": False})
        if parts[0] == "batches" and len(parts) >= 2 and parts[1] in self.batches:
            batch = self.batches[parts[1]]
            if parts[2:] == ["cancel"] and method == "POST":
                if batch["status"] in ("validating", "in_progress", "finalizing"):
                    batch.update(status="cancelling", cancelling_at=int(time.time()))
                return _json(200, batch)
            if not parts[2:] and method == "GET":
                self._advance(batch)
                return _json(200, batch)
        return _json(404, _not_found(f"{method} {path} is not a route of the fake server"))

    def _upload(self, head: h11.Request, raw: bytes) -> dict[str, Any]:
        """A multipart/form-data upload: its `file` and `purpose` fields."""
        content_type = dict(head.headers).get(b"content-type", b"").decode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields = {
            part.get_param("name", header="content-disposition"): part
            for part in message.iter_parts()
        }
        upload = fields["file"]
        purpose = fields["purpose"].get_payload(decode=True).decode()
        return self._store_file(
            upload.get_payload(decode=True), purpose, upload.get_filename() or "upload"
        )

    def _store_file(self, content: bytes, purpose: str, filename: str) -> dict[str, Any]:
        file_id = f"file-fake{next(self._ids)}"
        obj = {
            "id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed",
        }  # fmt: skip
        self.files[file_id] = {"object": obj, "content": content}
        return obj

    def _create_batch(self, body: dict[str, Any]) -> tuple[int, bytes, str]:
        stored = self.files.get(body.get("input_file_id", ""))
        if stored is None:
            return _json(400, _not_found(f"No such File object: {body.get('input_file_id')}"))
        lines = [json.loads(line) for line in stored["content"].splitlines() if line.strip()]
        batch_id = f"batch_fake{next(self._ids)}"
        now = int(time.time())
        self._batch_inputs[batch_id] = lines
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"),
            "errors": None, "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window"), "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now,
            "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None,
            "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None,
            "cancelled_at": None, "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }  # fmt: skip
        return _json(200, self.batches[batch_id])

    def _advance(self, batch: dict[str, Any]) -> None:
        """One step of the batch's life, per retrieve."""
        now = int(time.time())
        status = batch["status"]
        lines = self._batch_inputs[batch["id"]]
        if status == "validating" and self.batch_outcome == "failed":
            batch.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": "invalid_request", "line": 1, "param": "body.model",
                 "message": "The model 'gpt-none' does not exist or you do not have access."}
            ]})  # fmt: skip
        elif status == "validating":
            batch.update(status="in_progress", in_progress_at=now)
        elif status == "in_progress" and not self.batch_hold:
            if self.batch_outcome == "expired":
                answered = len(lines) // 2 if self.batch_answered is None else self.batch_answered
                self._answer_lines(batch, lines[:answered], expired=lines[answered:])
                batch.update(status="expired", expired_at=now)
            else:
                self._answer_lines(batch, lines)
                batch.update(status="finalizing", finalizing_at=now)
        elif status == "finalizing":
            batch.update(status="completed", completed_at=now)
        elif status == "cancelling":
            self._answer_lines(batch, lines[: self.batch_answered or 0])
            batch.update(status="cancelled", cancelled_at=now)

    def _answer_lines(
        self,
        batch: dict[str, Any],
        lines: list[dict[str, Any]],
        expired: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answer lines as ordinary requests would be; write the output and error files."""
        output, errors = [], []
        for line in lines:
            body = line["body"]
            self.requests.append(body)
            self.batch_lines.append(body)
            reply = self._reply(body)
            number = next(self._ids)
            result = {
                "id": f"batch_req_{number}",
                "custom_id": line["custom_id"],
                "response": {
                    "status_code": reply.status,
                    "request_id": f"req_{number}",
                    "body": reply.body,
                },
                "error": None,
            }
            (output if reply.status == 200 else errors).append(result)
        for line in expired or []:
            errors.append(
                {
                    "id": f"batch_req_{next(self._ids)}",
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion "
                        "window expired.",
                    },
                }
            )
        for name, rows in (("output_file_id", output), ("error_file_id", errors)):
            if rows:
                content = "".join(json.dumps(row) + "\n" for row in rows).encode()
                batch[name] = self._store_file(content, "batch_output", f"{batch['id']}.jsonl")[
                    "id"
                ]
        batch["request_counts"] = {
            "total": len(self._batch_inputs[batch["id"]]),
            "completed": len(output),
            "failed": len(errors),
        }


def _json(status: int, data: dict[str, Any]) -> tuple[int, bytes, str]:
    return status, json.dumps(data).encode(), "application/json"


def _not_found(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


async def _send(
    connection: h11.Connection, writer: asyncio.StreamWriter, status: int, data: bytes, kind: str
) -> None:
    headers = [("content-type", kind), ("content-length", str(len(data)))]
    writer.write(connection.send(h11.Response(status_code=status, headers=headers)))
    writer.write(connection.send(h11.Data(data=data)))
    writer.write(connection.send(h11.EndOfMessage()))
    await writer.drain()


async def _read_request(
    connection: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bytes] | None:
    """The next request's head and body, or None when the client closed the connection."""
    body = b""
    head: h11.Request | None = None
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, body
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
