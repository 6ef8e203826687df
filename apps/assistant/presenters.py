"""How answers look on the page."""

from __future__ import annotations

from django.urls import reverse

from apps.assistant.citations import render_answer
from apps.assistant.models import Message


def answer_html(message: Message) -> str:
    """The answer as sanitised HTML with each valid [n] linked to its passage."""
    if not message.content:
        return ""

    def link(n: int) -> str:
        return reverse("assistant:passage", args=[message.pk, n])

    return render_answer(message.content, passages=message.passages, link=link)


def reply_text(message: Message) -> str:
    """All the text the employee reads in an answer, as plain text: the quoted evidence
    sentences first, then the model's answer (or the reason there is none)."""
    parts = [item["text"] for item in message.evidence or []]
    if message.content:
        parts.append(message.content)
    elif message.error:
        parts.append(message.error)
    return "\n".join(parts)
