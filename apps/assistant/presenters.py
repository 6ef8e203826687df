"""How answers look on the page: the quoted evidence, then the model's answer with each
valid [n] linked to its passage and each sentence the check could not find in the
passages marked, or the evidence alone when most of the answer did not stand."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.assistant.citations import render_answer
from apps.assistant.models import Message
from apps.assistant.sentences import sentences

UNSUPPORTED_MARK = " *(not found in the documents)*"
EVIDENCE_ONLY = (
    "The model's answer is not shown: most of it could not be found in the documents. "
    "The quotes above are what the documents say."
)


def _link(message: Message, n: int) -> str:
    return reverse("assistant:passage", args=[message.pk, n])


def evidence_html(message: Message) -> str:
    """The quoted sentences, each with a link to its passage; text escaped, no markup."""
    if not message.evidence:
        return ""
    items = format_html_join(
        "",
        '<li>“{}” <a class="cite" href="{}" title="{}">[{}]</a></li>',
        ((e["text"], _link(message, e["n"]), e.get("title", ""), e["n"]) for e in message.evidence),
    )
    return format_html(
        '<div class="evidence"><p class="msg-meta">From the documents:</p><ul>{}</ul></div>',
        items,
    )


def _marked(message: Message) -> str:
    """The model's text with each unsupported sentence followed by the mark."""
    unsupported = set((message.grounding or {}).get("unsupported", []))
    if not unsupported:
        return message.content
    out = []
    for index, sentence in enumerate(sentences(message.content)):
        if index in unsupported:
            body = sentence.rstrip()
            out.append(body + UNSUPPORTED_MARK + sentence[len(body) :])
        else:
            out.append(sentence)
    return "".join(out)


def evidence_only(message: Message) -> bool:
    return (message.grounding or {}).get("verdict") == "evidence_only" and bool(message.evidence)


def answer_html(message: Message) -> str:
    """The whole answer as sanitised HTML."""
    parts = [evidence_html(message)]
    if evidence_only(message):
        parts.append(format_html('<p class="grounding-note">{}</p>', EVIDENCE_ONLY))
    elif message.content:
        parts.append(
            render_answer(
                _marked(message), passages=message.passages, link=lambda n: _link(message, n)
            )
        )
    return "".join(str(p) for p in parts)


def reply_text(message: Message) -> str:
    """All the text the employee reads in an answer, as plain text: the quoted evidence
    sentences first, then the model's answer (or the reason there is none)."""
    parts = [item["text"] for item in message.evidence or []]
    if evidence_only(message):
        parts.append(EVIDENCE_ONLY)
    elif message.content:
        parts.append(_marked(message).replace(UNSUPPORTED_MARK, " (not found in the documents)"))
    elif message.error:
        parts.append(message.error)
    return "\n".join(parts)
