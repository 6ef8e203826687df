"""One API question through the chat's own service path (apps/assistant/services.ask:
search what the asker may read, evidence, the local model, citations, audit), and what
its answer becomes in OpenAI's shape.

`enclave-external` asks for the stronger model the way the chat's button does: the local
model answers first (not streamed to the client), then apps/assistant/escalation.py asks
the egress gate, which alone decides whether anything leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.urls import reverse

from apps.api.errors import ApiError
from apps.assistant import services
from apps.assistant.escalation import escalate
from apps.assistant.models import Conversation, Message
from apps.assistant.presenters import reply_text
from apps.assistant.streaming import StreamEvent
from apps.audit.models import AuditEvent
from apps.routing.model_queue import BUSY, RETRY_AFTER_SECONDS

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.http import HttpRequest

# The answers the chat offers "Ask the stronger model" under.
ESCALATABLE = (Message.Status.COMPLETE, Message.Status.INCOMPLETE)


def question_events(
    *, user: AbstractBaseUser, conversation: Conversation, question: str, external: bool
) -> Iterator[StreamEvent]:
    """The chat's events for `question`; with `external`, those of the escalation."""
    events = services.ask(user=user, conversation=conversation, question=question)
    if not external:
        yield from events
        return
    local = list(events)
    dones = [i for i, e in enumerate(local) if e.kind == "done"]
    if len(dones) > 1:
        # The local model was down: the chat already went to the gate by itself.
        yield from local[dones[0] + 1 :]
        return
    answer = Message.objects.select_related("conversation", "reply_to").get(
        pk=local[dones[-1]].data["message_id"]
    )
    if answer.model_where == "local" and answer.status in ESCALATABLE:
        yield from escalate(user=user, answer=answer, trigger="user")
    else:
        yield from local  # nothing to escalate: nothing readable or relevant was found


@dataclass(frozen=True)
class Outcome:
    final: Message  # the answer the client gets
    earlier: list[Message]  # earlier answers to the same question (the local one)


def outcome_of(events: list[StreamEvent]) -> Outcome:
    """The last answer the events saved, and the answers to its question before it (the
    local answer of an escalation is not among the events the client gets)."""
    last_id = [e.data["message_id"] for e in events if e.kind == "done"][-1]
    final = Message.objects.select_related("reply_to").get(pk=last_id)
    earlier = list(
        Message.objects.filter(reply_to_id=final.reply_to_id, pk__lt=final.pk)
        .select_related("reply_to")
        .order_by("pk")
    )
    return Outcome(final, earlier)


def refusal(outcome: Outcome, request: HttpRequest) -> ApiError | None:
    """The error the client gets instead of the answer, or None."""
    final = outcome.final
    local_down = any(m.status == Message.Status.FAILED for m in outcome.earlier)
    if final.status == Message.Status.KEPT_LOCAL:
        extra: dict[str, Any] = {"reasons": _reasons(final)}
        kept = [m for m in outcome.earlier if m.status in ESCALATABLE]
        if kept:
            extra["local_answer"] = enclave_field(kept[-1], request)
        if local_down:
            return ApiError(
                503,
                "The local model is not answering, and this question may not go to the "
                "external model. " + final.content.removeprefix("Not sent to the stronger model. "),
                code="model_unavailable",
                extra=extra,
            )
        return ApiError(403, final.content, code="egress_refused", extra=extra)
    if final.status == Message.Status.FAILED and final.error == BUSY:
        return model_busy()
    if final.status == Message.Status.FAILED:
        extra = {"message_id": final.pk}
        if outcome.earlier and outcome.earlier[-1].status in ESCALATABLE:
            extra["local_answer"] = enclave_field(outcome.earlier[-1], request)
        return ApiError(503, final.error, code="model_unavailable", extra=extra)
    return None


def model_busy() -> ApiError:
    """The local model's queue is full, or the question waited too long in it."""
    return ApiError(503, BUSY, code="model_busy", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _reasons(kept: Message) -> list[dict[str, str]]:
    decision = (
        AuditEvent.objects.filter(
            action="routing.decision", conversation_id=str(kept.conversation_id)
        )
        .order_by("-id")
        .first()
    )
    if decision is None:
        return []
    return [{"code": r["code"], "message": r["message"]} for r in decision.details["reasons"]]


def enclave_field(reply: Message, request: HttpRequest) -> dict[str, Any]:
    """The `enclave` extra field of a response and of a stream's final chunk: the answer
    as the chat page shows it, with its citations (links to Enclave's passage pages)."""
    asked = reply.reply_to
    return {
        "conversation_id": str(reply.conversation_id),
        "message_id": reply.pk,
        "status": reply.status,
        "answered_by": {"where": reply.model_where, "model": reply.model_display},
        "content": reply_text(reply),
        "citations": [
            {
                "n": c["n"],
                "title": c.get("title", ""),
                "section": c.get("section", ""),
                "page": c.get("page"),
                "label": c.get("label", ""),
                "document_id": c.get("document_id"),
                "url": request.build_absolute_uri(
                    reverse("assistant:passage", args=[reply.pk, c["n"]])
                ),
            }
            for c in reply.citations
        ],
        "evidence": [
            {"text": e["text"], "n": e["n"], "title": e.get("title", "")}
            for e in reply.evidence or []
        ],
        "grounding": (reply.grounding or {}).get("verdict", ""),
        "searched_for": asked.search_query if asked is not None else "",
    }


def usage(reply: Message) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def completion(reply: Message, *, model: str, request: HttpRequest) -> dict[str, Any]:
    """The whole answer as a `chat.completion` object."""
    return {
        "id": f"chatcmpl-{reply.conversation_id}",
        "object": "chat.completion",
        "created": int(reply.created_at.timestamp()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply_text(reply)},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(reply),
        "enclave": enclave_field(reply, request),
    }
