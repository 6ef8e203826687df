"""Asking a question: retrieve what the asker may read, prompt the local model, stream,
cite, record. Every step that matters writes its audit event in the same transaction as
the row it changes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from apps.assistant.models import Conversation, Message
from apps.audit.services import audit_record
from apps.core import metrics as core_metrics

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from apps.retrieval.search import Retrieval
    from apps.routing.llm import StreamResult

log = logging.getLogger(__name__)

SEARCH_UNAVAILABLE = (
    "Search is unavailable right now (the document index is not answering), so I cannot "
    "look anything up. Your question is kept; try again in a minute."
)
NO_COLLECTIONS = (
    "No documents are available to you yet: none of your groups has been given a "
    "collection. A knowledge admin can grant one."
)
NOTHING_RELEVANT = (
    "I found nothing in the documents you can read that answers this, so I will not guess. "
    "Try other words, or ask a knowledge admin whether the document exists."
)


class QuestionRejected(ValueError):
    """The question cannot be asked as it is; str() says why, for the asker."""


@dataclass
class StreamEvent:
    kind: str  # "meta" | "token" | "done"
    data: dict[str, Any] = field(default_factory=dict)


def question_clean(question: str) -> str:
    text = (question or "").strip()
    if not text:
        raise QuestionRejected("Type a question first.")
    limit = settings.QUESTION_MAX_CHARS
    if len(text) > limit:
        raise QuestionRejected(
            f"Your question is {len(text):,} characters long; the limit is {limit:,}. "
            "Shorten it, or split it into several questions."
        )
    return text


def conversation_create(*, user: AbstractBaseUser) -> Conversation:
    return Conversation.objects.create(user=user)  # type: ignore[misc]  # AUTH_USER_MODEL is auth.User


def _history(conversation: Conversation, before: Message) -> list[dict[str, str]]:
    """Earlier complete turns, oldest first, as the model's messages."""
    turns: list[dict[str, str]] = []
    for message in conversation.messages.filter(created_at__lt=before.created_at).exclude(
        pk=before.pk
    ):
        if message.role == Message.Role.USER:
            turns.append({"role": "user", "content": message.content})
        elif message.status == Message.Status.COMPLETE and message.content:
            turns.append({"role": "assistant", "content": message.content})
    return turns


def _passage(hit: Any) -> dict[str, Any]:
    return {
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "collection_id": hit.collection_id,
        "title": hit.title,
        "section": hit.section,
        "text": hit.text,
        "page": hit.page,
        "char_start": hit.char_start,
        "char_end": hit.char_end,
        "label": hit.label,
        "score": round(float(hit.score), 6),
    }


def _public(passage: dict[str, Any]) -> dict[str, Any]:
    """A passage as it goes into the audit trail and to the page: no text."""
    return {k: v for k, v in passage.items() if k != "text"}


def _chat_event(
    user: AbstractBaseUser,
    action: str,
    conversation: Conversation,
    message: Message,
    **details: Any,
) -> None:
    """An audit event of a conversation's turn: who, what, which conversation and message."""
    audit_record(
        actor=user,
        action=action,
        target=conversation,
        details={"conversation_id": str(conversation.pk), "message_id": message.pk, **details},
    )


def ask(
    *, user: AbstractBaseUser, conversation: Conversation, question: str
) -> Iterator[StreamEvent]:
    """Answer `question` in `conversation`, yielding events as the answer streams.

    The question is stored before anything can fail, so it is never lost. Failures of
    search or of the model end the stream with a message for the asker, not an error.
    """
    from apps.retrieval.search import retrieve
    from apps.retrieval.store import StoreError

    question = question_clean(question)
    core_metrics.question_asked()  # Prometheus (apps/core/metrics.py)
    with transaction.atomic():
        asked = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=question
        )
        if not conversation.title:
            conversation.title = question[:120]
        conversation.save(update_fields=["title", "updated_at"])
        _chat_event(user, "chat.question", conversation, asked, question=question)

    try:
        found: Retrieval | None = retrieve(user=user, question=question)
    except StoreError as err:
        log.warning("retrieval failed: %s", err)
        found = None
    if found is None:
        yield from _finish_without_model(user, conversation, asked, SEARCH_UNAVAILABLE, "failed")
        return
    passages = [_passage(hit) for hit in found.hits]
    _note_retrieval(user, conversation, asked, found, passages)
    if not found.collection_ids:
        yield from _finish_without_model(user, conversation, asked, NO_COLLECTIONS, "no_context")
        return
    if not found.hits or not found.relevant:
        yield from _finish_without_model(user, conversation, asked, NOTHING_RELEVANT, "no_context")
        return
    yield from _answer_locally(user, conversation, asked, question, passages)


def _note_retrieval(
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    found: Retrieval,
    passages: list[dict[str, Any]],
) -> None:
    """Audit what was retrieved and remember its labels (as the database has them now)
    on the question and the conversation, for the egress gate's taint rule."""
    from apps.knowledge.selectors import document_labels

    labels = document_labels([p["document_id"] for p in passages])
    for p in passages:
        p["label"] = labels[p["document_id"]]  # the database's word, not the payload's
    with transaction.atomic():
        asked.retrieved = [
            {"chunk_id": p["chunk_id"], "document_id": p["document_id"], "label": p["label"]}
            for p in passages
        ]
        asked.save(update_fields=["retrieved"])
        touched = set(conversation.touched_labels or []) | set(labels.values())
        if touched != set(conversation.touched_labels or []):
            conversation.touched_labels = sorted(touched)
            conversation.save(update_fields=["touched_labels", "updated_at"])
        _chat_event(
            user,
            "chat.retrieval",
            conversation,
            asked,
            mode=found.mode,
            collections_searched=len(found.collection_ids),
            relevant=found.relevant,
            chunks=[_public(p) for p in passages],
            documents=sorted({p["document_id"] for p in passages}),
        )


def _finish_without_model(
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    text: str,
    status: str,
) -> Iterator[StreamEvent]:
    with transaction.atomic():
        reply = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            reply_to=asked,
            status=status,
            content="" if status == Message.Status.FAILED else text,
            error=text if status == Message.Status.FAILED else "",
        )
        _chat_event(
            user,
            "chat.answer",
            conversation,
            reply,
            status=status,
            citations=[],
            model="",
        )
    yield StreamEvent("meta", {"message_id": reply.pk, "model": "", "passages": 0})
    yield StreamEvent("done", _done_data(reply))


def _answer_locally(
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    question: str,
    passages: list[dict[str, Any]],
) -> Iterator[StreamEvent]:
    from apps.assistant.prompt import build_prompt
    from apps.assistant.tokens import count_message_tokens
    from apps.routing import services as routing
    from apps.routing.llm import local_endpoint, request_sha256, stream_chat

    endpoint = local_endpoint()
    prompt = build_prompt(
        question=question,
        passages=passages,
        history=_history(conversation, asked),
        count=count_message_tokens,
        context_window=settings.LOCAL_LLM_CONTEXT,
        answer_tokens=settings.LOCAL_LLM_MAX_TOKENS,
    )
    body = {
        "model": endpoint.model,
        "messages": prompt.messages,
        "max_tokens": settings.LOCAL_LLM_MAX_TOKENS,
        "temperature": 0.0,
    }

    def record_call(reply: Message, result: StreamResult, error: str) -> None:
        routing.llm_call_record(
            user=user,
            conversation=conversation,
            message=reply,
            where="local",
            provider="local",
            model=endpoint.model,
            payload_sha256=request_sha256(body),
            result=result,
            cost=Decimal(0),
            error=error,
        )

    reply = yield from _stream_reply(
        user,
        conversation,
        asked,
        model=(endpoint.model, endpoint.where, endpoint.display),
        passages=prompt.passages,
        prompt_tokens=prompt.tokens,
        pieces=lambda result: stream_chat(
            endpoint, prompt.messages, max_tokens=settings.LOCAL_LLM_MAX_TOKENS, result=result
        ),
        record_call=record_call,
    )
    if reply.status in (Message.Status.FAILED, Message.Status.INCOMPLETE):
        # The local model is down, or died mid-answer (what arrived is kept, marked
        # incomplete): the stronger model may answer, if the gate allows. A browser that
        # went away never gets here (the generator is closed).
        yield from escalate(user=user, answer=reply, trigger="local_down")
    elif reply.status == Message.Status.COMPLETE and _declines(reply.content):
        from apps.routing.gate import current_policy

        if current_policy().auto_escalate:
            yield from escalate(user=user, answer=reply, trigger="auto")


# The local answer says it cannot answer (the automatic escalation rule's signal; it is
# only consulted when retrieval found relevant passages, or the model was not asked).
_DECLINES = re.compile(
    r"\b(documents? do(?:es)? not say|(?:can ?not|can't|unable to) (?:answer|find|tell)|"
    r"(?:do not|don't) know|no information|not (?:mentioned|provided|specified))\b",
    re.IGNORECASE,
)


def _declines(text: str) -> bool:
    return bool(_DECLINES.search(text or ""))


def _ms(seconds: float | None) -> int | None:
    return round(seconds * 1000) if seconds is not None else None


def escalate(*, user: AbstractBaseUser, answer: Message, trigger: str) -> Iterator[StreamEvent]:
    """Ask the external model the question `answer` answered, if the egress gate allows.

    `trigger`: "user" (the button), "local_down" or "auto". Denied → a message that says
    why, in plain words, and nothing leaves. The decision is audited either way.
    """
    from apps.routing import gate
    from apps.routing import services as routing
    from apps.routing.providers import external_provider

    conversation = answer.conversation
    asked = answer.reply_to
    if asked is None:
        raise ValueError("this answer has no question to escalate")
    broken: Exception | None = None
    try:
        provider = external_provider()
    except ImproperlyConfigured as err:  # e.g. its key file cannot be read
        provider, broken = None, err
    policy = gate.current_policy()
    request, decision = gate.prepare_and_decide(
        user=user,
        conversation=conversation,
        question=asked.content,
        passages=answer.passages,
        history=_history(conversation, asked),
        provider=provider,
        policy=policy,
    )
    if broken is not None:
        decision = gate.failed_decision(broken, None, decision.payload_sha256)
    routing.decision_record(
        user=user, conversation=conversation, decision=decision, request=request, trigger=trigger
    )
    if not decision.allowed or provider is None:
        text = "Not sent to the stronger model. " + decision.summary()
        yield from _finish_without_model(user, conversation, asked, text, "kept_local")
        return
    sent: dict[str, str] = {}

    def record_call(reply: Message, result: StreamResult, error: str) -> None:
        routing.external_call_record(
            user=user,
            conversation=conversation,
            message=reply,
            provider=provider,
            result=result,
            sent_sha256=sent.get("sha256", ""),
            error=error,
        )

    yield from _stream_reply(
        user,
        conversation,
        asked,
        model=(provider.model, "external", provider.display),
        passages=request.passages,
        prompt_tokens=0,
        pieces=lambda result: gate.send(
            decision=decision, request=request, provider=provider, result=result, sent=sent
        ),
        record_call=record_call,
        error_suffix=" The answer above stays as it was.",
    )


def _stream_reply(
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    *,
    model: tuple[str, str, str],
    passages: list[dict[str, Any]],
    prompt_tokens: int,
    pieces: Callable[[StreamResult], Iterator[str]],
    record_call: Callable[[Message, StreamResult, str], None],
    error_suffix: str = "",
) -> Generator[StreamEvent, None, Message]:
    """Stream one model's answer into a new message: meta, tokens, done. Returns it."""
    from apps.routing.llm import ModelUnavailable, StreamResult

    name, where, display = model
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        reply_to=asked,
        status=Message.Status.STREAMING,
        model_name=name,
        model_where=where,
        model_display=display,
        passages=passages,
        prompt_tokens=prompt_tokens,
    )
    yield StreamEvent(
        "meta",
        {"message_id": reply.pk, "model": display, "where": where, "passages": len(passages)},
    )
    result = StreamResult()
    error = ""
    try:
        for piece in pieces(result):
            yield StreamEvent("token", {"text": piece})
    except ModelUnavailable as err:
        error = f"{err}{error_suffix}"
    finally:
        # Also runs when the browser goes away mid-stream (GeneratorExit): what arrived
        # is kept, marked incomplete, and recorded.
        if not error and result.finish_reason not in ("stop", "length"):
            error = "The answer stopped before the model finished."
        core_metrics.answer_finished(where=where, result=result, failed=bool(error))
        _finish_reply_once_more_if_disconnected(
            user, conversation, reply, result, error, lambda: record_call(reply, result, error)
        )
    yield StreamEvent("done", _done_data(reply))
    return reply


def _finish_reply_once_more_if_disconnected(
    user: AbstractBaseUser,
    conversation: Conversation,
    reply: Message,
    result: Any,
    error: str,
    record_call: Any,
) -> None:
    """_finish_reply, retried once on a fresh connection if the database connection died
    while the answer streamed (a restart or failover during the seconds a stream lasts):
    the answer and its audit events are then still written together, and the stream ends
    normally. Nothing was committed by the failed try (one transaction)."""
    from django.db import InterfaceError, OperationalError, connection

    try:
        _finish_reply(user, conversation, reply, result, error, record_call)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise  # a caller's transaction is lost with the connection; not ours to redo
        log.warning("database connection lost while streaming; saving the answer again")
        connection.close()
        _finish_reply(user, conversation, reply, result, error, record_call)


def _finish_reply(
    user: AbstractBaseUser,
    conversation: Conversation,
    reply: Message,
    result: Any,
    error: str,
    record_call: Any,
) -> None:
    """Save what the model said, its citations and status; audit the call and the answer
    in one transaction."""
    from apps.assistant.citations import attribute, extract_citations

    reply.content = result.text
    reply.citations = [{**c, "by": "model"} for c in extract_citations(result.text, reply.passages)]
    if not reply.citations and result.text:
        # The model used the passages without numbering them: match its sentences.
        reply.content = attribute(result.text, reply.passages)
        reply.citations = [
            {**c, "by": "match"} for c in extract_citations(reply.content, reply.passages)
        ]
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
        _chat_event(
            user,
            "chat.answer",
            conversation,
            reply,
            status=reply.status,
            model=reply.model_name,
            where=reply.model_where,
            citations=[
                {k: c[k] for k in ("n", "chunk_id", "document_id", "label", "by")}
                for c in reply.citations
            ],
        )


def _done_data(reply: Message) -> dict[str, Any]:
    from apps.assistant.presenters import answer_html

    return {
        "message_id": reply.pk,
        "status": reply.status,
        "html": answer_html(reply),
        "error": reply.error,
        "citations": [_public(c) for c in reply.citations],
        "model": reply.model_display,
        "where": reply.model_where,
    }


def message_feedback(*, user: AbstractBaseUser, message: Message, value: int) -> Message:
    if value not in (1, -1):
        raise ValueError("feedback is +1 or -1")
    with transaction.atomic():
        message.feedback = value
        message.feedback_at = timezone.now()
        message.save(update_fields=["feedback", "feedback_at"])
        _chat_event(
            user,
            "chat.feedback",
            message.conversation,
            message,
            value="up" if value == 1 else "down",
        )
    return message
