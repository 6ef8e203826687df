"""A real HTTP server on 127.0.0.1 that plays the proprietary LLM APIs and records every
request it receives.

It is the one thing our tests replace: the external provider. It speaks
- OpenAI-compatible `POST /v1/chat/completions` (JSON, or SSE with `stream: true`, with a
  final usage chunk when `stream_options.include_usage` is set), and
- Anthropic-shaped `POST /v1/messages` (JSON, or the SSE event sequence message_start,
  content_block_start, content_block_delta..., content_block_stop, message_delta, message_stop).

Every request is recorded, with its exact raw body, before any delay or error response.

    with FakeProvider(reply="Hello [1].") as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="test")
        ...
        assert fake.requests[0].json["model"] == "gpt-x"
        assert "CANARY" not in fake.bodies_text()
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    """One request as received. Header names are lower-cased (HTTP names are
    case-insensitive and the clients differ in how they spell them)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None
    received_at: float = field(default_factory=time.time)


def _words(text: str) -> list[str]:
    """Split a reply into stream deltas that join back to exactly `text`."""
    parts: list[str] = []
    current = ""
    for ch in text:
        current += ch
        if ch == " ":
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    return parts or [""]


def _count_tokens(text: str) -> int:
    # Plausible, deterministic: about four characters per token, at least one.
    return max(1, (len(text) + 3) // 4)


def _prompt_text(payload: dict[str, Any]) -> str:
    pieces: list[str] = []
    system = payload.get("system")
    if isinstance(system, str):
        pieces.append(system)
    elif isinstance(system, list):
        pieces.extend(b.get("text", "") for b in system if isinstance(b, dict))
    for message in payload.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            pieces.append(content)
        elif isinstance(content, list):
            pieces.extend(b.get("text", "") for b in content if isinstance(b, dict))
    return "\n".join(pieces)


class FakeProvider:
    def __init__(
        self, *, reply: str = "External answer [1].", delay: float = 0.0, status: int = 200
    ):
        self.reply = reply
        self.delay = delay
        self.status = status
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        if self._server is not None:
            raise RuntimeError("FakeProvider already started")
        handler = type("_Handler", (_Handler,), {"provider": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read --------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeProvider not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """For OpenAI-compatible clients; the anthropic client takes `root_url`."""
        return f"{self.root_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.root_url

    def bodies_text(self) -> str:
        with self._lock:
            bodies = [r.body for r in self.requests]
        return "\n".join(b.decode("utf-8", errors="replace") for b in bodies)

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)


class _Handler(BaseHTTPRequestHandler):
    provider: FakeProvider
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs; every reply has a length

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet test output

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing left to answer

    # -- recording --------------------------------------------------------------------------

    def _read_and_record(self) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = Recorded(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            json=parsed,
        )
        self.provider._record(recorded)
        return recorded

    def do_GET(self) -> None:  # noqa: N802
        self._read_and_record()
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        recorded = self._read_and_record()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/chat/completions"):
            style = "openai"
        elif path.endswith("/messages"):
            style = "anthropic"
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        if self.provider.delay:
            time.sleep(self.provider.delay)
        if self.provider.status != 200:
            self._error(style, self.provider.status)
            return
        payload = recorded.json if isinstance(recorded.json, dict) else None
        if payload is None:
            self._error(style, 400, "body is not a JSON object")
            return
        if style == "openai":
            self._openai(payload)
        else:
            self._anthropic(payload)

    # -- responses --------------------------------------------------------------------------

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, style: str, status: int, message: str | None = None) -> None:
        message = message or f"fake provider configured to fail with {status}"
        if style == "openai":
            kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            )
            body: dict[str, Any] = {
                "error": {"message": message, "type": kind, "param": None, "code": None}
            }
        else:
            kind = {
                400: "invalid_request_error",
                401: "authentication_error",
                403: "permission_error",
                404: "not_found_error",
                429: "rate_limit_error",
                529: "overloaded_error",
            }.get(status, "api_error")
            body = {"type": "error", "error": {"type": kind, "message": message}}
        # x-should-retry: false keeps the official clients from retrying a configured error.
        self._json(status, body, headers={"x-should-retry": "false"})

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _sse(self, data: str, event: str | None = None) -> None:
        frame = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        self.wfile.write(frame.encode())
        self.wfile.flush()

    def _openai(self, payload: dict[str, Any]) -> None:
        reply = self.provider.reply
        model = str(payload.get("model") or "fake-model")
        prompt_tokens = _count_tokens(_prompt_text(payload))
        completion_tokens = _count_tokens(reply)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not payload.get("stream"):
            self._json(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": usage,
                },
            )
            return
        include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            obj: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if include_usage:
                obj["usage"] = None
            return json.dumps(obj)

        self._start_sse()
        self._sse(chunk({"role": "assistant", "content": ""}, None))
        for piece in _words(reply):
            self._sse(chunk({"content": piece}, None))
        self._sse(chunk({}, "stop"))
        if include_usage:
            self._sse(
                json.dumps(
                    {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        self._sse("[DONE]")

    def _anthropic(self, payload: dict[str, Any]) -> None:
        reply = self.provider.reply
        model = str(payload.get("model") or "fake-model")
        input_tokens = _count_tokens(_prompt_text(payload))
        output_tokens = _count_tokens(reply)
        ident = f"msg_{uuid.uuid4().hex[:24]}"
        if not payload.get("stream"):
            self._json(
                200,
                {
                    "id": ident,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": reply}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                },
            )
            return
        self._start_sse()

        def event(name: str, obj: dict[str, Any]) -> None:
            self._sse(json.dumps({"type": name, **obj}), event=name)

        event(
            "message_start",
            {
                "message": {
                    "id": ident,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                }
            },
        )
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        self._sse(json.dumps({"type": "ping"}), event="ping")
        for piece in _words(reply):
            event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
        event("content_block_stop", {"index": 0})
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
        event("message_stop", {})


def use_as_provider(
    settings: Any, provider: FakeProvider, *, name: str = "fakeai", timeout: float = 10.0
) -> None:
    """Point Enclave's EXTERNAL_LLM_* settings (pytest-django's `settings`) at `provider`
    as an OpenAI-compatible endpoint."""
    settings.EXTERNAL_LLM_KIND = "openai-compatible"
    settings.EXTERNAL_LLM_NAME = name
    settings.EXTERNAL_LLM_BASE_URL = provider.base_url
    settings.EXTERNAL_LLM_MODEL = "gpt-fake"
    settings.EXTERNAL_LLM_API_KEY = "sk-test-not-a-real-key"
    settings.EXTERNAL_LLM_TIMEOUT = timeout
