"""One answer into a new message, as the page receives it: `meta`, the quoted `evidence`
(when there is some), `queue` while it waits for the local model (how many are ahead,
apps/routing/model_queue.py; the question's first `queue` event comes before its search,
apps/assistant/services.py), then `token`s, then `done`. When a model's stream ends
(finished, failed, or the reader gone) what arrived is saved with its citations, its
grounding check and status, and the model call and the answer are audited, in one
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction

from apps.assistant.audit_events import chat_event, citations_audited, passage_public
from apps.assistant.citations import cite
from apps.assistant.models import Conversation, Message
from apps.assistant.presenters import answer_html, evidence_html
from apps.assistant.reconnect import once_more_if_disconnected
from apps.core import metrics as core_metrics
from apps.routing.llm import ModelUnavailable, StreamResult
from apps.routing.model_queue import BUSY, RETRY_AFTER_SECONDS, ModelBusy, Turn

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# The `llm.call` audit event of a finished stream, written with the answer.
CallRecorder = Callable[[Message, StreamResult, str], None]
# The grounding check of a finished answer: (text, passages) → Message.grounding.
Checker = Callable[[str, list[dict[str, Any]]], dict[str, Any]]


@dataclass
class StreamEvent:
    kind: str  # "meta" | "searched" | "evidence" | "queue" | "token" | "done"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerModel:
    """Who answers, as the message and the page name it."""

    name: str
    where: str  # "local" | "external"
    display: str


def stream_reply(
    *,
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    model: AnswerModel,
    passages: list[dict[str, Any]],
    prompt_tokens: int,
    pieces: Callable[[StreamResult], Iterator[str]],
    record_call: CallRecorder,
    error_suffix: str = "",
    evidence: list[dict[str, Any]] | None = None,
    check: Checker | None = None,
    turn: Turn | None = None,
) -> Generator[StreamEvent, None, Message]:
    """Stream one model's answer into a new message: meta, evidence, tokens, done.
    Returns it. With `turn` (the local model's queue: joined before the search, or here
    if not yet), the model is called once the turn comes, and each place in the queue
    until then is a `queue` event; a full queue or a wait too long ends the answer with
    BUSY. The turn is left here, on every way out, before the answer is saved."""
    reply = _reply_row(
        conversation,
        asked,
        model,
        passages=passages,
        prompt_tokens=prompt_tokens,
        evidence=evidence or [],
    )
    reply.save(force_insert=True)
    yield StreamEvent(
        "meta",
        {
            "message_id": reply.pk,
            "model": model.display,
            "where": model.where,
            "passages": len(passages),
        },
    )
    if reply.evidence:
        yield StreamEvent("evidence", {"sentences": reply.evidence, "html": evidence_html(reply)})
    result = StreamResult()
    error = ""
    busy = False
    try:
        # The slot (or the place) is given back on every way out of this block.
        with turn if turn is not None else nullcontext():
            for ahead in turn.wait() if turn is not None else ():
                yield StreamEvent("queue", queue_data(ahead))
            for piece in pieces(result):
                yield StreamEvent("token", {"text": piece})
    except ModelBusy as err:
        error, busy = f"{err}{error_suffix}", True
    except ModelUnavailable as err:
        error = f"{err}{error_suffix}"
    finally:
        # Also runs when the browser goes away mid-stream (GeneratorExit): what arrived
        # is kept, marked incomplete, and recorded.
        if not error and result.finish_reason not in ("stop", "length"):
            error = "The answer stopped before the model finished."
        if not busy:  # a busy model was not called: counted as busy (model_queue), not here
            core_metrics.answer_finished(where=model.where, result=result, failed=bool(error))
        once_more_if_disconnected(
            lambda: _save_reply(
                user,
                conversation,
                reply,
                result,
                error,
                lambda: record_call(reply, result, error),
                check,
            )
        )
    yield StreamEvent("done", done_data(reply))
    return reply


def _save_reply(
    user: AbstractBaseUser,
    conversation: Conversation,
    reply: Message,
    result: StreamResult,
    error: str,
    record_call: Callable[[], None],
    check: Checker | None,
) -> None:
    """Save what the model said, its citations, grounding and status; audit the call and
    the answer in one transaction."""
    reply.content, reply.citations = cite(result.text, reply.passages)
    if check is not None and reply.content:
        reply.grounding = check(reply.content, reply.passages)
    reply.completion_tokens = result.completion_tokens
    reply.first_token_ms = _ms(result.first_token_s)
    if error:
        reply.status = Message.Status.INCOMPLETE if result.text else Message.Status.FAILED
        reply.error = error
    else:
        reply.status = Message.Status.COMPLETE
    with transaction.atomic():
        reply.save()
        record_call()
        chat_event(
            user=user,
            action="chat.answer",
            conversation=conversation,
            message=reply,
            details={
                "status": reply.status,
                "model": reply.model_name,
                "where": reply.model_where,
                "citations": citations_audited(reply.citations),
                "evidence": [passage_public(e) for e in reply.evidence],
                "grounding": {k: v for k, v in reply.grounding.items() if k != "unsupported"},
            },
        )


def reply_without_model(
    *,
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    text: str,
    status: str,
) -> Iterator[StreamEvent]:
    """An answer no model gave (search down, nothing readable, the gate said no)."""
    failed = status == Message.Status.FAILED
    with transaction.atomic():
        reply = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            reply_to=asked,
            status=status,
            content="" if failed else text,
            error=text if failed else "",
        )
        chat_event(
            user=user,
            action="chat.answer",
            conversation=conversation,
            message=reply,
            details={"status": status, "citations": [], "model": ""},
        )
    yield StreamEvent("meta", {"message_id": reply.pk, "model": "", "passages": 0})
    yield StreamEvent("done", done_data(reply))


def _reply_row(
    conversation: Conversation, asked: Message, model: AnswerModel, **fields: Any
) -> Message:
    """The answer's row, not yet saved: streaming, by `model`, in reply to `asked`."""
    return Message(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        reply_to=asked,
        status=Message.Status.STREAMING,
        model_name=model.name,
        model_where=model.where,
        model_display=model.display,
        **fields,
    )


def reply_busy(
    *,
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    model: AnswerModel,
    record_call: CallRecorder,
) -> Iterator[StreamEvent]:
    """BUSY at once: the local model's queue was full when the question came, so nothing
    was searched and the model was not called. Saved and audited as an answer of that
    model that ended busy (the call with its error, as a wait too long is), never
    escalated; the queue counted it (apps/routing/model_queue.py)."""
    reply = _reply_row(conversation, asked, model)
    result = StreamResult()
    _save_reply(
        user, conversation, reply, result, BUSY, lambda: record_call(reply, result, BUSY), None
    )
    yield StreamEvent(
        "meta",
        {"message_id": reply.pk, "model": model.display, "where": model.where, "passages": 0},
    )
    yield StreamEvent("done", done_data(reply))


def queue_data(ahead: int) -> dict[str, Any]:
    """A `queue` event: how many requests the local model serves before this one."""
    if ahead == 0:
        text = "Waiting for the model: you are next."
    else:
        text = f"Waiting for the model: {ahead} ahead."
    return {"ahead": ahead, "text": text}


def done_data(reply: Message) -> dict[str, Any]:
    data = {
        "message_id": reply.pk,
        "status": reply.status,
        "html": answer_html(reply),
        "error": reply.error,
        "citations": [passage_public(c) for c in reply.citations],
        "model": reply.model_display,
        "where": reply.model_where,
    }
    if reply.error == BUSY:
        data["retry_after"] = RETRY_AFTER_SECONDS  # the page may offer to ask again
    return data


def _ms(seconds: float | None) -> int | None:
    return round(seconds * 1000) if seconds is not None else None
