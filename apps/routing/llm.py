"""The one client for model servers that speak the OpenAI chat-completions API.

The local model (llama.cpp server on one machine, vLLM in production) and, later, an
external OpenAI-compatible provider are all reached through `stream_chat`. Which server
answers is configuration (an `Endpoint`); nothing here or in its callers branches on
"is this vLLM or llama.cpp".

Sending text to an EXTERNAL endpoint is only allowed from the egress gate in this
package; the local endpoint is the only one built outside it (`local_endpoint`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings


class ModelUnavailable(Exception):
    """The model server could not be reached, timed out or refused the request.

    `str(err)` is a sentence for the person waiting for an answer.
    """


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    where: str  # "local" (on our premises) or "external"
    display: str  # what the answer shows, e.g. "SmolLM2-135M-Instruct on this server"
    provider: str = "local"
    api_key: str = field(default="not-needed", repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # The wire protocol: "openai" (chat completions: OpenAI, vLLM, llama.cpp, any
    # compatible server) or "anthropic" (the Messages API).
    protocol: str = "openai"


@dataclass
class StreamResult:
    """Filled in while `stream_chat` runs; complete once its iterator is exhausted."""

    text: str = ""
    finish_reason: str = ""
    completion_tokens: int = 0
    prompt_tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    deltas: int = 0
    usage_reported: bool = False


def request_sha256(payload: Any) -> str:
    """SHA-256 of a request as canonical JSON (sorted keys, no spaces), for the audit."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def local_endpoint() -> Endpoint:
    return Endpoint(
        base_url=settings.LOCAL_LLM_BASE_URL,
        model=settings.LOCAL_LLM_MODEL,
        where="local",
        display=f"{settings.LOCAL_LLM_MODEL} on this company's servers",
        provider="local",
        api_key=settings.LOCAL_LLM_API_KEY or "not-needed",
        connect_timeout=settings.LOCAL_LLM_CONNECT_TIMEOUT,
        read_timeout=settings.LOCAL_LLM_TIMEOUT,
    )


@lru_cache(maxsize=8)
def _client(endpoint: Endpoint) -> Any:
    # One client (and so one connection pool) per endpoint per process: a new TCP
    # connection for every question would add to the time to first token.
    return _new_client(endpoint, on_request=None)


def _new_client(endpoint: Endpoint, *, on_request: Callable[[Any], None] | None) -> Any:
    import httpx2

    timeout = httpx2.Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout)
    hooks = {"request": [on_request]} if on_request is not None else None
    # The read timeout bounds the wait for each streamed piece, not the whole answer;
    # max_retries=0: a retry would hide a dead server behind a longer wait.
    http = httpx2.Client(timeout=timeout, event_hooks=hooks)
    if endpoint.protocol == "anthropic":
        from anthropic import Anthropic

        return Anthropic(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url or None,
            timeout=timeout,
            max_retries=0,
            http_client=http,
        )
    from openai import OpenAI

    return OpenAI(
        base_url=endpoint.base_url or None,
        api_key=endpoint.api_key,
        timeout=timeout,
        max_retries=0,
        http_client=http,
    )


def _unavailable(endpoint: Endpoint, err: Exception) -> ModelUnavailable:
    name = "The local model" if endpoint.where == "local" else f"The {endpoint.provider} model"
    kind = type(err).__name__
    status = getattr(err, "status_code", None)
    if kind == "APITimeoutError":
        return ModelUnavailable(
            f"{name} did not answer within {endpoint.read_timeout:g} seconds. "
            "Your question is kept; try again in a moment."
        )
    if kind == "APIConnectionError":
        return ModelUnavailable(
            f"{name} is not reachable right now (the model server is down or restarting). "
            "Your question is kept; try again in a moment."
        )
    if status is not None:
        return ModelUnavailable(
            f"{name} refused the request (HTTP {status}). Your question is kept; "
            "if this goes on, tell your administrator."
        )
    return ModelUnavailable(f"{name} failed: {err}. Your question is kept.")


def _api_errors() -> tuple[type[Exception], ...]:
    import openai

    errors: tuple[type[Exception], ...] = (openai.OpenAIError,)
    try:
        import anthropic

        errors += (anthropic.AnthropicError,)
    except ImportError:  # only needed when an Anthropic provider is configured
        pass
    return errors


def stream_chat(
    endpoint: Endpoint,
    messages: Sequence[dict[str, str]],
    *,
    max_tokens: int,
    result: StreamResult | None = None,
    temperature: float = 0.0,
    on_request: Callable[[Any], None] | None = None,
) -> Iterator[str]:
    """Yield the answer's text as the server streams it.

    Raises ModelUnavailable (with a sentence for the user) when the server is down,
    times out or fails, before or during the stream; `result` then holds what arrived.
    `on_request` sees each HTTP request, body bytes included, before it is sent, and may
    raise to stop it (the egress gate's last check); it gets a client of its own.
    """
    result = result if result is not None else StreamResult()
    client = (
        _client(endpoint) if on_request is None else _new_client(endpoint, on_request=on_request)
    )
    started = time.perf_counter()
    pieces = _anthropic_pieces if endpoint.protocol == "anthropic" else _openai_pieces
    try:
        for piece in pieces(client, endpoint, messages, max_tokens, temperature, result):
            if result.first_token_s is None:
                result.first_token_s = time.perf_counter() - started
            result.text += piece
            result.deltas += 1
            yield piece
    except _api_errors() as err:
        raise _unavailable(endpoint, err) from err
    finally:
        result.total_s = time.perf_counter() - started
        if on_request is not None:
            client.close()
        if not result.usage_reported:
            # Servers that do not report usage in the stream: each delta is one token
            # for llama.cpp and vLLM, which is what the audit needs to within a token.
            result.completion_tokens = result.deltas


def _openai_pieces(
    client: Any,
    endpoint: Endpoint,
    messages: Sequence[dict[str, str]],
    max_tokens: int,
    temperature: float,
    result: StreamResult,
) -> Iterator[str]:
    extra = {"stream_options": {"include_usage": True}} if endpoint.where == "external" else {}
    stream = client.chat.completions.create(
        model=endpoint.model,
        messages=list(messages),
        max_tokens=max_tokens,
        temperature=temperature,
        stream=True,
        **extra,
    )
    for event in stream:
        usage = getattr(event, "usage", None)
        if usage is not None:
            result.prompt_tokens = usage.prompt_tokens or 0
            result.completion_tokens = usage.completion_tokens or 0
            result.usage_reported = True
        if not event.choices:
            continue
        choice = event.choices[0]
        if choice.finish_reason:
            result.finish_reason = choice.finish_reason
        piece = choice.delta.content if choice.delta else None
        if piece:
            yield piece


def _anthropic_pieces(
    client: Any,
    endpoint: Endpoint,
    messages: Sequence[dict[str, str]],
    max_tokens: int,
    temperature: float,
    result: StreamResult,
) -> Iterator[str]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    with client.messages.stream(
        model=endpoint.model,
        system=system,
        messages=turns,
        max_tokens=max_tokens,
        # No temperature: this client's stream() does not take one (anthropic 2.14).
    ) as stream:
        yield from (piece for piece in stream.text_stream if piece)
        final = stream.get_final_message()
    result.prompt_tokens = final.usage.input_tokens or 0
    result.completion_tokens = final.usage.output_tokens or 0
    result.usage_reported = True
    # Normalised to the chat-completions words the callers check.
    words = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
    result.finish_reason = words.get(final.stop_reason or "", final.stop_reason or "")
