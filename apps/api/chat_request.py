"""The body of `POST /v1/chat/completions`, read strictly: what Enclave uses, and a 400
naming the field for anything it cannot use.

Used: `model` (`enclave` answers with the local model, `enclave-external` asks for the
stronger model through the egress gate), `messages` (the last one is the question, the
ones before it the conversation so far), `stream`, `stream_options.include_usage`.
System and developer messages are dropped: Enclave's own system prompt holds, and no
client can tell it what a document's label is. Sampling fields (`temperature`,
`max_tokens`, …) are accepted and ignored: the model's settings are the server's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.api.errors import ApiError, bad_request

LOCAL_MODEL = "enclave"
EXTERNAL_MODEL = "enclave-external"
MODELS = {
    LOCAL_MODEL: "Answers from the documents you may read, with the local model.",
    EXTERNAL_MODEL: "The same, then the stronger external model if the egress gate allows.",
}
# The conversation a client sends: at most this many earlier messages, each this long.
HISTORY_MAX_MESSAGES = 40
HISTORY_MESSAGE_MAX_CHARS = 20_000
_DROPPED_ROLES = ("system", "developer")


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str
    question: str
    history: list[Turn]
    stream: bool
    include_usage: bool

    @property
    def external(self) -> bool:
        return self.model == EXTERNAL_MODEL


def parse_chat_request(body: bytes) -> ChatRequest:
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: 'enclave' or 'enclave-external'.", param="model")
    if model not in MODELS:
        raise ApiError(
            404,
            f"The model '{model[:100]}' does not exist; use 'enclave' or 'enclave-external'.",
            code="model_not_found",
            param="model",
        )
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", param="stream")
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", param="stream_options")
    turns = _turns(data.get("messages"))
    if not turns or turns[-1].role != "user":
        raise bad_request("The last message must be the user's question.", param="messages")
    *history, last = turns
    if len(history) > HISTORY_MAX_MESSAGES:
        raise bad_request(
            f"{len(history)} earlier messages were sent; the most Enclave reads is "
            f"{HISTORY_MAX_MESSAGES}. Send only the recent part of the conversation.",
            param="messages",
        )
    return ChatRequest(
        model=model,
        question=last.content,
        history=history,
        stream=stream,
        include_usage=bool(options.get("include_usage")),
    )


def _turns(messages: Any) -> list[Turn]:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list.", param="messages")
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object.", param=where)
        role = message.get("role")
        if role in _DROPPED_ROLES:
            continue
        if role not in ("user", "assistant"):
            raise bad_request(
                f"{where}.role must be 'user', 'assistant' or 'system', not {role!r:.40}.",
                param=f"{where}.role",
            )
        content = _text(message.get("content"), where)
        limit = settings.QUESTION_MAX_CHARS if index == len(messages) - 1 else None
        limit = limit or HISTORY_MESSAGE_MAX_CHARS
        if len(content) > limit:
            raise bad_request(
                f"{where}.content is {len(content):,} characters long; the limit is {limit:,}.",
                param=f"{where}.content",
            )
        turns.append(Turn(role, content))
    return turns


def _text(content: Any, where: str) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_request(
                    f"{where}.content may hold text parts only (no images or files).",
                    param=f"{where}.content",
                )
            parts.append(str(part.get("text") or ""))
        text = "\n".join(parts)
    else:
        raise bad_request(f"{where}.content must be a string.", param=f"{where}.content")
    # A NUL means nothing, and PostgreSQL text cannot store one.
    return text.replace("\x00", "").strip()
