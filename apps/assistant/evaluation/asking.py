"""One question asked as the employee asks it (through services.ask(), the chat view's
path) and the answer read back as the employee saw it.

Timing: `first_s` runs from the call to the first thing the employee can read, the
first "evidence" or "token" event, or the "done" event when neither came (a refusal);
`total_s` to the end of the stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apps.assistant.models import Conversation, Message
from apps.assistant.presenters import reply_text
from apps.assistant.services import ask
from apps.knowledge.models import Document

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Events that put something readable on the page.
READABLE = ("evidence", "token")
ANSWERED = (Message.Status.COMPLETE, Message.Status.INCOMPLETE)


@dataclass(frozen=True)
class Answer:
    """What the employee got for one question."""

    reply: str  # all the text the employee sees in the answer
    generated: str  # the model's text alone ("" when no model answered)
    abstained: bool
    cited_sources: tuple[str, ...]  # file names of the cited and quoted passages
    first_s: float
    total_s: float
    status: str = ""
    searched: str = ""  # the standalone query searched, when it differs from the question
    sentences: int = 0  # generated sentences the grounding check looked at
    supported: int = 0  # of those, supported by a passage they cite


def ask_timed(
    *, user: AbstractBaseUser, conversation: Conversation, question: str
) -> tuple[float, float]:
    """Ask through the product path, draining the stream; (first_s, total_s)."""
    started = time.perf_counter()
    first: float | None = None
    for event in ask(user=user, conversation=conversation, question=question):
        if first is None and (event.kind in READABLE or event.kind == "done"):
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    return (total if first is None else first), total


def read_answer(*, conversation: Conversation, first_s: float, total_s: float) -> Answer:
    """The answer to the conversation's latest question, from the saved messages."""
    asked = (
        Message.objects.filter(conversation=conversation, role=Message.Role.USER)
        .order_by("-created_at", "-id")
        .first()
    )
    if asked is None:
        raise RuntimeError(f"conversation {conversation.pk} holds no question")
    replies = list(asked.replies.order_by("created_at", "id"))
    generated = [m.content for m in replies if m.status in ANSWERED and m.model_where and m.content]
    document_ids: list[int] = []
    for message in replies:
        for item in [*(message.citations or []), *(message.evidence or [])]:
            document_id = item.get("document_id")
            if document_id is not None and document_id not in document_ids:
                document_ids.append(document_id)
    names = dict(Document.objects.filter(pk__in=document_ids).values_list("pk", "original_name"))
    return Answer(
        reply="\n".join(reply_text(m) for m in replies),
        generated="\n".join(generated),
        abstained=bool(replies) and replies[0].status == Message.Status.NO_CONTEXT,
        cited_sources=tuple(names[i] for i in document_ids if i in names),
        first_s=first_s,
        total_s=total_s,
        status=replies[0].status if replies else "",
        searched=asked.search_query if asked.search_query != asked.content else "",
        sentences=sum(int((m.grounding or {}).get("sentences") or 0) for m in replies),
        supported=sum(int((m.grounding or {}).get("supported") or 0) for m in replies),
    )


def ask_and_read(*, user: AbstractBaseUser, conversation: Conversation, question: str) -> Answer:
    first_s, total_s = ask_timed(user=user, conversation=conversation, question=question)
    return read_answer(conversation=conversation, first_s=first_s, total_s=total_s)
