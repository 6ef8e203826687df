"""Conversations as the chat leaves them, and escalations through the real view: for tests
that attack the egress gate with the recording stand-in as the provider.

    doc = labelled_document("public", "text", title="Launch")
    answer = answered(user, [doc], question="When?")
    done = escalate(client, user, answer)       # the `done` event of the stream
    decision_event(answer).details["reasons"]
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from django.core.files.base import ContentFile
from django.urls import reverse

from apps.assistant.models import Conversation, Message
from apps.audit.models import AuditEvent
from apps.knowledge import services as knowledge
from apps.knowledge.models import Document


def labelled_document(label: str, text: str, *, title: str) -> Document:
    """An indexed document in a collection of its own (no worker: the text is set)."""
    collection = knowledge.collection_create(
        name=f"{label} {title} {uuid.uuid4().hex[:8]}", actor=None
    )
    doc, _ = knowledge.document_create(
        collection=collection,
        upload=ContentFile(text.encode(), name=f"{label}-doc.txt"),
        user=None,
        label=label,
        title=title,
    )
    Document.objects.filter(pk=doc.pk).update(text=text, status="indexed")
    doc.refresh_from_db()
    return doc


def _passages(docs: list[Document], section: str) -> list[dict[str, Any]]:
    return [
        {
            "n": n,
            "chunk_id": f"c{d.pk}",
            "document_id": d.pk,
            "collection_id": d.collection_id,
            "title": d.title,
            "section": section,
            "text": d.text,
            "page": None,
            "char_start": 0,
            "char_end": len(d.text),
            "label": d.label,
            "score": 0.9,
        }
        for n, d in enumerate(docs, 1)
    ]


def answered(
    user: Any,
    docs: list[Document],
    *,
    question: str,
    section: str = "",
    earlier: Sequence[tuple[str, list[Document]]] = (),
) -> Message:
    """A conversation as the chat leaves it: the `earlier` turns (question, documents
    retrieved), then one local answer to `question` whose prompt held `docs`' passages
    (each under the section name `section`)."""
    conversation = Conversation.objects.create(user=user, title=question)
    touched: set[str] = set()
    answer = None
    for q, retrieved in [*earlier, (question, docs)]:
        asked = Message.objects.create(
            conversation=conversation,
            role="user",
            content=q,
            retrieved=[
                {"chunk_id": f"c{d.pk}", "document_id": d.pk, "label": d.label} for d in retrieved
            ],
        )
        touched |= {d.label for d in retrieved}
        answer = Message.objects.create(
            conversation=conversation,
            role="assistant",
            reply_to=asked,
            status="complete",
            content="A local answer.",
            model_where="local",
            model_name="SmolLM2-135M-Instruct",
            passages=_passages(retrieved, section),
        )
    conversation.touched_labels = sorted(touched)
    conversation.save(update_fields=["touched_labels"])
    assert answer is not None
    return answer


def escalate(client: Any, user: Any, answer: Message) -> dict[str, Any]:
    """Press "Ask the stronger model" under `answer` as `user`; the stream's `done`."""
    client.force_login(user)
    return stream_done(client.post(reverse("assistant:escalate", args=[answer.pk])))


def stream_done(resp: Any) -> dict[str, Any]:
    """The one `done` event of a chat stream (ask or escalate)."""
    assert resp.status_code == 200, resp.content
    body = b"".join(resp.streaming_content).decode()
    done = [
        json.loads(block.split("data: ", 1)[1])
        for block in body.split("\n\n")
        if block.startswith("event: done")
    ]
    assert len(done) == 1, body
    return done[0]


def decision_event(answer: Message) -> AuditEvent:
    return AuditEvent.objects.filter(
        action="routing.decision", conversation_id=str(answer.conversation_id)
    ).latest("id")
