"""The one client for model servers that speak the OpenAI chat-completions API.

The local model (llama.cpp server on one machine, vLLM in production) and, later, an
external OpenAI-compatible provider are all reached through `stream_chat`. Which server
answers is configuration (an `Endpoint`); nothing here or in its callers branches on
"is this vLLM or llama.cpp".

Sending text to an EXTERNAL endpoint is only allowed from the egress gate in this
package; the local endpoint is the only one built outside it (`local_endpoint`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
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
    from openai import OpenAI, Timeout

    return OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        # The read timeout bounds the wait for each streamed piece, not the whole answer.
        timeout=Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout),
        max_retries=0,  # a retry would hide a dead server behind a longer wait
    )


def _unavailable(endpoint: Endpoint, err: Exception) -> ModelUnavailable:
    import openai

    name = "The local model" if endpoint.where == "local" else f"The {endpoint.provider} model"
    if isinstance(err, openai.APITimeoutError):
        return ModelUnavailable(
            f"{name} did not answer within {endpoint.read_timeout:g} seconds. "
            "Your question is kept; try again in a moment."
        )
    if isinstance(err, openai.APIConnectionError):
        return ModelUnavailable(
            f"{name} is not reachable right now (the model server is down or restarting). "
            "Your question is kept; try again in a moment."
        )
    if isinstance(err, openai.APIStatusError):
        return ModelUnavailable(
            f"{name} refused the request (HTTP {err.status_code}). Your question is kept; "
            "if this goes on, tell your administrator."
        )
    return ModelUnavailable(f"{name} failed: {err}. Your question is kept.")


def stream_chat(
    endpoint: Endpoint,
    messages: Sequence[dict[str, str]],
    *,
    max_tokens: int,
    result: StreamResult | None = None,
    temperature: float = 0.0,
) -> Iterator[str]:
    """Yield the answer's text as the server streams it.

    Raises ModelUnavailable (with a sentence for the user) when the server is down,
    times out or fails, before or during the stream; `result` then holds what arrived.
    """
    import openai

    result = result if result is not None else StreamResult()
    started = time.perf_counter()
    try:
        stream = _client(endpoint).chat.completions.create(
            model=endpoint.model,
            messages=list(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
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
                if result.first_token_s is None:
                    result.first_token_s = time.perf_counter() - started
                result.text += piece
                result.deltas += 1
                yield piece
    except openai.OpenAIError as err:
        raise _unavailable(endpoint, err) from err
    finally:
        result.total_s = time.perf_counter() - started
        if not result.usage_reported:
            # Servers that do not report usage in the stream: each delta is one token
            # for llama.cpp and vLLM, which is what the audit needs to within a token.
            result.completion_tokens = result.deltas
