"""A streamed answer as OpenAI's `chat.completion.chunk` server-sent events: the quoted
evidence and the model's tokens as content deltas while they come, then one final chunk
with `finish_reason` and the `enclave` field (the checked answer, its citations), an
optional usage chunk, and `data: [DONE]`.

The tokens are the model's raw words; the final chunk's `enclave.content` is the answer
after the grounding check, exactly what the non-streamed response's content holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from apps.api.answers import enclave_field, outcome_of, refusal, usage
from apps.api.chat_request import ChatRequest
from apps.assistant.streaming import StreamEvent

if TYPE_CHECKING:
    from django.http import HttpRequest


def _data(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def sse(
    *,
    request: HttpRequest,
    chat: ChatRequest,
    conversation_id: str,
    started: list[StreamEvent],
    rest: Iterator[StreamEvent],
) -> Iterator[bytes]:
    created = int(time.time())
    base = {
        "id": f"chatcmpl-{conversation_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": chat.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _data({**base, "choices": [choice], **extra})

    seen: list[StreamEvent] = []
    answered = False  # some model's words went out already
    try:
        yield chunk({"role": "assistant", "content": ""})
        for event in _chain(started, rest):
            seen.append(event)
            if event.kind == "meta" and answered:
                # A second answer follows one that broke off (the stronger model after
                # the local one died mid-answer): a blank line between them.
                yield chunk({"content": "\n\n"})
            elif event.kind == "evidence":
                lines = "\n".join(s["text"] for s in event.data["sentences"])
                yield chunk({"content": lines + "\n\n"})
                answered = True
            elif event.kind == "token" and event.data["text"]:
                yield chunk({"content": event.data["text"]})
                answered = True
    finally:
        rest_close = getattr(rest, "close", None)
        if rest_close is not None:
            rest_close()  # a client gone mid-answer: the chat saves what arrived
    outcome = outcome_of(seen)
    error = refusal(outcome, request)
    if error is not None:
        # The stream has begun, so the status is sent; OpenAI's clients raise on this.
        yield _data(json.loads(error.response().content))
        return
    reply = outcome.final
    if not answered:
        yield chunk({"content": enclave_field(reply, request)["content"]})
    yield chunk({}, "stop", enclave=enclave_field(reply, request))
    if chat.include_usage:
        yield _data({**base, "choices": [], "usage": usage(reply)})
    yield b"data: [DONE]\n\n"


def _chain(started: list[StreamEvent], rest: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    yield from started
    yield from rest
