"""Reads for the chat pages. A user only ever reaches their own conversations."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.assistant.models import Conversation, Message
from apps.knowledge.models import Document
from apps.knowledge.selectors import readable_collection_ids

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Around a cited passage, this much of its document is shown (a document can be megabytes).
PASSAGE_CONTEXT_CHARS = 3000


def conversations_of(user: AbstractBaseUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user=user)  # type: ignore[misc]  # AUTH_USER_MODEL is auth.User


def conversation_for(user: AbstractBaseUser, conversation_id: Any) -> Conversation:
    """The user's conversation; 404 for anyone else's, and for an id that is no UUID."""
    try:
        pk = uuid.UUID(str(conversation_id))
    except ValueError:
        raise Http404("No such conversation.") from None
    return get_object_or_404(Conversation, pk=pk, user=user)


def message_for(user: AbstractBaseUser, message_id: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("conversation"),
        pk=message_id,
        conversation__user=user,
        role=Message.Role.ASSISTANT,
    )


def conversation_history(conversation: Conversation, *, before: Message) -> list[dict[str, str]]:
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


def cited_passage(user: AbstractBaseUser, message: Message, n: int) -> dict[str, Any] | None:
    """The passage [n] of an answer, with its document's text around it, or None.

    None also when the asker can no longer read the document's collection (access is
    checked now, not when the answer was written) or the document is gone: a citation
    never shows more than the asker may see today.
    """
    passage = next((p for p in message.passages if p.get("n") == n), None)
    if passage is None:
        return None
    document = (
        Document.objects.filter(
            pk=passage["document_id"], collection_id__in=readable_collection_ids(user)
        )
        .only("pk", "title", "text", "label", "collection_id", "version", "superseded_at")
        .first()
    )
    if document is None:
        return None
    text = document.text
    start = max(0, min(int(passage["char_start"]), len(text)))
    end = max(start, min(int(passage["char_end"]), len(text)))
    window_start = max(0, start - PASSAGE_CONTEXT_CHARS)
    window_end = min(len(text), end + PASSAGE_CONTEXT_CHARS)
    return {
        "n": n,
        "document": document,
        "page": passage.get("page"),
        "section": passage.get("section", ""),
        "before": text[window_start:start],
        "highlight": text[start:end],
        "after": text[end:window_end],
        "cut_before": window_start > 0,
        "cut_after": window_end < len(text),
    }


def earlier_search_queries(conversation: Conversation) -> list[str]:
    """What each earlier question of the conversation was searched for, oldest first (the
    question itself for questions asked before search queries were kept)."""
    return [
        query or content
        for query, content in Message.objects.filter(
            conversation_id=conversation.pk, role=Message.Role.USER
        ).values_list("search_query", "content")
    ]
