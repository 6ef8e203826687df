"""Asking a question: search what the asker may read (a follow-up as the standalone query
it stands for), quote the best evidence, prompt the local model with the sentences that
matter, stream, check the answer against the passages, cite, record; then, when the local
answer cannot stand, the stronger model if the gate allows (apps/assistant/escalation.py).
Every step that matters writes its audit event in the same transaction as the row it
changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.assistant import evidence as evidence_mod
from apps.assistant import grounding
from apps.assistant.audit_events import chat_event, passage_public
from apps.assistant.auto_escalation import escalation_trigger
from apps.assistant.escalation import escalate
from apps.assistant.followup import SearchQuery, search_queries
from apps.assistant.models import Conversation, Message
from apps.assistant.searching import search_turn
from apps.assistant.selectors import conversation_history, earlier_search_queries
from apps.assistant.streaming import (
    AnswerModel,
    CallRecorder,
    StreamEvent,
    queue_data,
    reply_busy,
    reply_without_model,
    stream_reply,
)
from apps.core import metrics as core_metrics
from apps.knowledge.points import Hit
from apps.knowledge.selectors import document_labels
from apps.retrieval.embeddings import embed_query
from apps.retrieval.store import StoreError
from apps.routing import services as routing
from apps.routing.llm import Endpoint, StreamResult, local_endpoint, stream_chat
from apps.routing.model_queue import ModelBusy, Turn, local_model_turn
from apps.routing.prompt import build_prompt
from apps.routing.tokens import count_message_tokens
from apps.search.search import Retrieval, retrieve

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

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
# How many of the nearest documents' titles a refusal names.
NEAREST_TITLES = 3

# What a passage keeps of a search hit: in the prompt, on the message, in the audit trail.
PASSAGE_FIELDS = (
    "chunk_id", "document_id", "collection_id", "title", "section", "text", "page",
    "char_start", "char_end", "label", "version",
)  # fmt: skip


class QuestionRejected(ValueError):
    """The question cannot be asked as it is; str() says why, for the asker."""


def question_clean(question: str) -> str:
    # A NUL means nothing in a question, and PostgreSQL text cannot store one.
    text = (question or "").replace("\x00", "").strip()
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


def _passage(hit: Hit) -> dict[str, Any]:
    return {
        **{name: getattr(hit, name) for name in PASSAGE_FIELDS},
        "score": round(float(hit.score), 6),
    }


def ask(
    *, user: AbstractBaseUser, conversation: Conversation, question: str
) -> Iterator[StreamEvent]:
    """Answer `question` in `conversation`, yielding events as the answer streams.

    The question is stored before anything can fail, so it is never lost. Its place in
    the local model's queue is taken next, before the search. Failures of search or of
    the model, and a full queue, end the stream with a message for the asker, not an
    error.
    """
    question = question_clean(question)
    core_metrics.question_asked()  # Prometheus (apps/core/metrics.py)
    candidates = search_queries(question, earlier_search_queries(conversation))
    with transaction.atomic():
        asked = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=question,
            search_query=candidates[0].text,
        )
        if not conversation.title:
            conversation.title = question[:120]
        conversation.save(update_fields=["title", "updated_at"])
        chat_event(
            user=user,
            action="chat.question",
            conversation=conversation,
            message=asked,
            details={"question": question},
        )

    def without_model(text: str, status: str) -> Iterator[StreamEvent]:
        return reply_without_model(
            user=user, conversation=conversation, asked=asked, text=text, status=status
        )

    # The place in the local model's line is taken before the search, and shown at once:
    # the search is the slow part under load (many at once on a few cores), and the
    # asker would otherwise see nothing until it ends. A full line is told so at once,
    # without searching (which would only add to the load).
    turn = local_model_turn(user_key=str(user.pk))
    try:
        turn.join()
    except ModelBusy:
        endpoint = local_endpoint()
        yield from reply_busy(
            user=user,
            conversation=conversation,
            asked=asked,
            model=AnswerModel(endpoint.model, endpoint.where, endpoint.display),
            record_call=_local_call(user, conversation, endpoint),
        )
        return
    # Left on every way out: at once when there is nothing for the model to answer, at
    # the end of the model's answer otherwise (before any escalation).
    with turn:
        if turn.ahead is not None:
            yield StreamEvent("queue", queue_data(turn.ahead))
        try:
            with search_turn(holds_model=turn.admitted):
                searched = _search(user, candidates)
        except StoreError as err:
            log.warning("retrieval failed: %s", err)
            turn.leave()
            yield from without_model(SEARCH_UNAVAILABLE, Message.Status.FAILED)
            return
        if searched.query.rewritten:
            yield StreamEvent("searched", {"query": searched.query.text})
        passages = searched.passages
        _note_retrieval(user, conversation, asked, searched, [c.text for c in candidates])
        if not searched.found.collection_ids:
            turn.leave()
            yield from without_model(NO_COLLECTIONS, Message.Status.NO_CONTEXT)
            return
        if searched.evidence is None or not evidence_mod.answerable(searched.evidence):
            turn.leave()
            text = _nothing_relevant(searched.query, passages)
            yield from without_model(text, Message.Status.NO_CONTEXT)
            return
        yield from _answer_locally(
            user, conversation, asked, question, passages, searched.evidence, turn
        )


@dataclass(frozen=True)
class Searched:
    query: SearchQuery
    found: Retrieval
    passages: list[dict[str, Any]]
    evidence: evidence_mod.Evidence | None


def _search(user: AbstractBaseUser, candidates: list[SearchQuery]) -> Searched:
    """Search each candidate query (one, unless the question is a follow-up) and keep the
    one whose best sentence scores highest. Raises StoreError when search cannot run."""
    best: Searched | None = None
    for query in candidates:
        found = retrieve(user=user, question=query.text)
        passages = [_passage(hit) for hit in found.hits]
        evidence = (
            evidence_mod.gather(query.text, embed_query(query.text), passages) if passages else None
        )
        here = Searched(query, found, passages, evidence)
        if best is None or _strength(here) > _strength(best):
            best = here
        if not found.collection_ids:
            break  # nothing readable: no other query will find more
    assert best is not None  # noqa: S101 - search_queries never returns an empty list
    return best


def _strength(searched: Searched) -> float:
    ev = searched.evidence
    if ev is None or not ev.sentences:
        return float("-inf")
    return ev.sentences[0].score(ev.weights)


def _nothing_relevant(query: SearchQuery, passages: list[dict[str, Any]]) -> str:
    """The refusal, with what was searched and the nearest readable documents' titles."""
    titles: list[str] = []
    for p in passages:
        if p["title"] not in titles:
            titles.append(p["title"])
    text = f"{NOTHING_RELEVANT}\n\nSearched for: “{query.text}”."
    if titles:
        text += " Nearest documents: " + "; ".join(f"“{t}”" for t in titles[:NEAREST_TITLES]) + "."
    return text


def _note_retrieval(
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    searched: Searched,
    tried: list[str],
) -> None:
    """Audit what was retrieved and remember its labels (as the database has them now)
    on the question and the conversation, for the egress gate's taint rule; and what was
    searched for (the query kept, and every query tried for a follow-up)."""
    found, passages = searched.found, searched.passages
    labels = document_labels([p["document_id"] for p in passages])
    for p in passages:
        p["label"] = labels[p["document_id"]]  # the database's word, not the payload's
    with transaction.atomic():
        asked.retrieved = [
            {"chunk_id": p["chunk_id"], "document_id": p["document_id"], "label": p["label"]}
            for p in passages
        ]
        asked.search_query = searched.query.text
        asked.save(update_fields=["retrieved", "search_query"])
        touched = set(conversation.touched_labels or []) | set(labels.values())
        if touched != set(conversation.touched_labels or []):
            conversation.touched_labels = sorted(touched)
            conversation.save(update_fields=["touched_labels", "updated_at"])
        chat_event(
            user=user,
            action="chat.retrieval",
            conversation=conversation,
            message=asked,
            details={
                "searched_for": searched.query.text,
                "queries_tried": tried,
                "mode": found.mode,
                "collections_searched": len(found.collection_ids),
                # Anything to answer from (apps/assistant/evidence.py), not the dense
                # score alone (Retrieval.relevant), which refused answerable questions.
                "relevant": searched.evidence is not None
                and evidence_mod.answerable(searched.evidence),
                "chunks": [passage_public(p) for p in passages],
                "documents": sorted({p["document_id"] for p in passages}),
            },
        )


def _answer_locally(
    user: AbstractBaseUser,
    conversation: Conversation,
    asked: Message,
    question: str,
    passages: list[dict[str, Any]],
    evidence: evidence_mod.Evidence,
    turn: Turn,
) -> Iterator[StreamEvent]:
    """The model reads the best sentences of the passages holding the evidence (best
    first), with their neighbours; the message keeps those passages whole, so citations
    open them and the grounding check reads all of them."""
    endpoint = local_endpoint()
    windows = evidence_mod.context_texts(evidence, passages)
    prompt = build_prompt(
        question=question,
        passages=[{**passages[n - 1], "text": text} for n, text in windows],
        history=conversation_history(conversation, before=asked),
        count=count_message_tokens,
        context_window=settings.LOCAL_LLM_CONTEXT,
        answer_tokens=settings.LOCAL_LLM_MAX_TOKENS,
    )
    whole = {p["chunk_id"]: p["text"] for p in passages}
    given = [{**p, "text": whole[p["chunk_id"]]} for p in prompt.passages]
    number = {p["chunk_id"]: p["n"] for p in given}
    quotes = [
        {
            "text": s.text,
            "n": number[passages[s.n - 1]["chunk_id"]],
            "chunk_id": passages[s.n - 1]["chunk_id"],
            "document_id": passages[s.n - 1]["document_id"],
            "title": passages[s.n - 1]["title"],
            "score": round(s.score(evidence.weights), 4),
        }
        for s in evidence.quotes
        if passages[s.n - 1]["chunk_id"] in number
    ]

    reply = yield from stream_reply(
        user=user,
        conversation=conversation,
        asked=asked,
        model=AnswerModel(endpoint.model, endpoint.where, endpoint.display),
        passages=given,
        prompt_tokens=prompt.tokens,
        pieces=lambda result: stream_chat(
            endpoint, prompt.messages, max_tokens=settings.LOCAL_LLM_MAX_TOKENS, result=result
        ),
        record_call=_local_call(user, conversation, endpoint),
        evidence=quotes,
        check=lambda text, numbered: grounding.check(text, numbered).as_dict(),
        turn=turn,
    )
    # The local model down, dead mid-answer, or (if the policy says so) not knowing: the
    # stronger model may answer, if the gate allows. A browser that went away never gets
    # here (the generator is closed).
    trigger = escalation_trigger(reply)
    if trigger is not None:
        yield from escalate(user=user, answer=reply, trigger=trigger)


def _local_call(
    user: AbstractBaseUser, conversation: Conversation, endpoint: Endpoint
) -> CallRecorder:
    """The `llm.call` audit event of a local model call, written with its answer."""

    def record(reply: Message, result: StreamResult, error: str) -> None:
        routing.llm_call_record(
            user=user,
            conversation=conversation,
            message_id=reply.pk,
            where="local",
            provider="local",
            model=endpoint.model,
            result=result,
            prompt_tokens=reply.prompt_tokens,
            cost=Decimal(0),
            error=error,
        )

    return record


def message_feedback(*, user: AbstractBaseUser, message: Message, value: int) -> Message:
    if value not in (1, -1):
        raise ValueError("feedback is +1 or -1")
    with transaction.atomic():
        message.feedback = value
        message.feedback_at = timezone.now()
        message.save(update_fields=["feedback", "feedback_at"])
        chat_event(
            user=user,
            action="chat.feedback",
            conversation=message.conversation,
            message=message,
            details={"value": "up" if value == 1 else "down"},
        )
    return message
