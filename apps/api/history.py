"""The conversation a client sends, stored as the chat stores its own turns, so that the
chat's own code reads it: follow-ups are searched with the earlier questions' words,
the prompt carries the earlier turns, and the egress gate's taint rule sees what those
turns touch.

A client cannot say what an earlier turn retrieved, so each earlier message is searched
again now, as the asker, and the labels of what that finds are the turn's labels, as if
the chat had answered it. If the search cannot run, the conversation counts as having
touched restricted text: an error while deciding means "local".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction

from apps.api.chat_request import Turn
from apps.assistant.audit_events import chat_event
from apps.assistant.models import Conversation, Message
from apps.core.labels import Label
from apps.knowledge.selectors import document_labels
from apps.retrieval.store import StoreError
from apps.search.search import retrieve

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)


def _retrieved(user: AbstractBaseUser, text: str) -> list[dict[str, object]]:
    hits = retrieve(user=user, question=text).hits
    labels = document_labels([h.document_id for h in hits])  # the database's word
    return [
        {"chunk_id": h.chunk_id, "document_id": h.document_id, "label": labels[h.document_id]}
        for h in hits
    ]


def api_conversation_create(
    *, user: AbstractBaseUser, history: list[Turn], token_id: int
) -> Conversation:
    """A new conversation holding the client's earlier messages as its turns."""
    searched: list[list[dict[str, object]]] = []
    failed = False
    for turn in history:
        try:
            searched.append(_retrieved(user, turn.content))
        except StoreError as err:
            log.warning("history search failed: %s", err)
            searched.append([])
            failed = True
    touched = {str(p["label"]) for found in searched for p in found}
    if failed:
        touched.add(Label.RESTRICTED.value)
    with transaction.atomic():
        conversation = Conversation.objects.create(  # type: ignore[misc]  # auth.User
            user=user, touched_labels=sorted(touched)
        )
        asked: Message | None = None
        last: Message | None = None
        for turn, found in zip(history, searched, strict=True):
            if turn.role == "user":
                asked = last = Message.objects.create(
                    conversation=conversation,
                    role=Message.Role.USER,
                    content=turn.content,
                    search_query=turn.content,
                    retrieved=found,
                )
            else:
                # Kept for the prompt; the chat's own label memory is on the question.
                last = Message.objects.create(
                    conversation=conversation,
                    role=Message.Role.ASSISTANT,
                    reply_to=asked,
                    content=turn.content,
                    model_where="client",
                    retrieved=found,
                )
        if last is not None:
            chat_event(
                user=user,
                action="chat.history_supplied",
                conversation=conversation,
                message=last,
                details={
                    "token_id": token_id,
                    "turns": len(history),
                    "labels": sorted(touched),
                    "search_failed": failed,
                },
            )
    return conversation
