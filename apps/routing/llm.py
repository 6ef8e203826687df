"""The one client for model servers: the local model (llama.cpp server on one machine,
vLLM in production) and the external providers (OpenAI-compatible or the Anthropic
Messages API) are all reached through `stream_chat`. Which server answers is
configuration (an `Endpoint`); nothing here or in its callers branches on "is this vLLM
or llama.cpp".

Sending text to an EXTERNAL endpoint is only allowed from the egress gate in this
package; the local endpoint is the only one built outside it (`local_endpoint`).

Every request's body goes through one hook before it leaves: the caller's last check
runs there (the gate's), and the SHA-256 of the exact bytes sent is kept on the
`StreamResult`, so the `llm.call` audit row names what actually went out.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    import httpx2


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
    # SHA-256 of the request body bytes as they were handed to the connection; "" when
    # no request left (refused by the last check, or never built).
    sent_sha256: str = ""


# What the caller may run on each outgoing HTTP request, body included; raising stops it.
RequestCheck = Callable[["httpx2.Request"], None]


def request_sha256(payload: Any) -> str:
    """SHA-256 of a payload as canonical JSON (sorted keys, no spaces): the identity of
    what the egress gate decided on, before any client serialises it."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return body_sha256(canonical.encode("utf-8"))


def body_sha256(body: bytes) -> str:
    """SHA-256 of request bytes: what the `llm.call` audit row records."""
    return hashlib.sha256(body).hexdigest()


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


@dataclass(frozen=True)
class _Call:
    """One `stream_chat` call: what it asks of which server, and where its outcome goes."""

    endpoint: Endpoint
    messages: Sequence[dict[str, str]]
    max_tokens: int
    temperature: float
    result: StreamResult
    on_request: RequestCheck | None


# The call whose request is being sent in this context. A client (and its connection
# pool) serves every call to its endpoint, so its one request hook finds the call here;
# set only around the SDK call that sends, never across a yield of the stream.
_sending: ContextVar[_Call | None] = ContextVar("enclave_llm_sending", default=None)


@contextmanager
def _sending_as(call: _Call) -> Iterator[None]:
    token = _sending.set(call)
    try:
        yield
    finally:
        _sending.reset(token)


def _before_send(http_request: httpx2.Request) -> None:
    """The request hook of every client: the call's last check, then the hash of the
    bytes about to go out."""
    call = _sending.get()
    if call is None:
        return
    if call.on_request is not None:
        call.on_request(http_request)
    call.result.sent_sha256 = body_sha256(http_request.content)


@lru_cache(maxsize=8)
def _client(endpoint: Endpoint) -> Any:
    # One client (and so one connection pool) per endpoint per process: a new TCP
    # connection for every question would add to the time to first token.
    import httpx2  # heavy: ~0.1 s to import, and only a model call needs it

    timeout = httpx2.Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout)
    # The read timeout bounds the wait for each streamed piece, not the whole answer;
    # max_retries=0: a retry would hide a dead server behind a longer wait.
    http = httpx2.Client(timeout=timeout, event_hooks={"request": [_before_send]})
    if endpoint.protocol == "anthropic":
        from anthropic import Anthropic  # heavy: the Anthropic SDK and its pydantic models

        return Anthropic(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url or None,
            timeout=timeout,
            max_retries=0,
            http_client=http,
        )
    from openai import OpenAI  # heavy: the OpenAI SDK and its pydantic models

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
    import openai  # heavy: the OpenAI SDK (already loaded by the client that failed)

    errors: tuple[type[Exception], ...] = (openai.OpenAIError,)
    try:
        import anthropic  # heavy: the Anthropic SDK, only when it is installed

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
    on_request: RequestCheck | None = None,
) -> Iterator[str]:
    """Yield the answer's text as the server streams it.

    Raises ModelUnavailable (with a sentence for the user) when the server is down,
    times out or fails, before or during the stream; `result` then holds what arrived.
    `on_request` sees each HTTP request, body bytes included, before it is sent, and may
    raise to stop it (the egress gate's last check). `result.sent_sha256` is set from
    the body bytes once they pass it.
    """
    result = result if result is not None else StreamResult()
    call = _Call(endpoint, messages, max_tokens, temperature, result, on_request)
    started = time.perf_counter()
    pieces = _anthropic_pieces if endpoint.protocol == "anthropic" else _openai_pieces
    try:
        for piece in pieces(_client(endpoint), call):
            if result.first_token_s is None:
                result.first_token_s = time.perf_counter() - started
            result.text += piece
            result.deltas += 1
            yield piece
    except _api_errors() as err:
        raise _unavailable(endpoint, err) from err
    finally:
        result.total_s = time.perf_counter() - started
        if not result.usage_reported:
            # Servers that do not report usage in the stream: each delta is one token
            # for llama.cpp and vLLM, which is what the audit needs to within a token.
            result.completion_tokens = result.deltas


def _openai_pieces(client: Any, call: _Call) -> Iterator[str]:
    endpoint, result = call.endpoint, call.result
    extra = {"stream_options": {"include_usage": True}} if endpoint.where == "external" else {}
    with _sending_as(call):
        stream = client.chat.completions.create(
            model=endpoint.model,
            messages=list(call.messages),
            max_tokens=call.max_tokens,
            temperature=call.temperature,
            stream=True,
            **extra,
        )
    with stream:  # a reader that goes away mid-answer gives the connection back
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


def _anthropic_pieces(client: Any, call: _Call) -> Iterator[str]:
    result = call.result
    system = "\n\n".join(m["content"] for m in call.messages if m["role"] == "system")
    turns = [m for m in call.messages if m["role"] != "system"]
    with ExitStack() as open_stream:
        with _sending_as(call):  # the request leaves when the stream is entered
            stream = open_stream.enter_context(
                client.messages.stream(
                    model=call.endpoint.model,
                    system=system,
                    messages=turns,
                    max_tokens=call.max_tokens,
                    # No temperature: this client's stream() does not take one (anthropic 2.14).
                )
            )
        yield from (piece for piece in stream.text_stream if piece)
        final = stream.get_final_message()
    result.prompt_tokens = final.usage.input_tokens or 0
    result.completion_tokens = final.usage.output_tokens or 0
    result.usage_reported = True
    # Normalised to the chat-completions words the callers check.
    words = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
    result.finish_reason = words.get(final.stop_reason or "", final.stop_reason or "")
