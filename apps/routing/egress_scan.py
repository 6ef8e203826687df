"""What would leave, part by part: the question, each earlier turn, and each passage's
text, title and section name.

`redact_parts` blanks what the scan finds in every part before the payload is built (the
policy's redact mode); `findings_by_part` scans the messages exactly as they would be sent
and names the part each finding lies in, for the decision's reason and the audit. A part
is named "question", "history 2", "passage 3", "passage 3 title", "passage 3 section"
("system prompt" for the rules); anything found outside a known part is named after its
message ("message 4"). Only kinds are kept (EMAIL_ADDRESS, IBAN_CODE, …), never the text.

The company's own never-send patterns (EGRESS_BLOCK_PATTERNS: code names, customer
numbers) are findings of kind COMPANY_PATTERN here, in every part. A pattern that does not
compile raises, and the gate reads that as "deny".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.routing import scan
from apps.routing.prompt import passage_header
from apps.routing.scan import Finding

if TYPE_CHECKING:
    from apps.routing.decision import ExternalRequest

COMPANY_PATTERN = "COMPANY_PATTERN"
QUESTION = "question"
SYSTEM = "system prompt"
_PASSAGE_FIELDS = (("text", ""), ("title", " title"), ("section", " section"))


def findings(text: str) -> list[Finding]:
    """The scanner's findings in `text`, and the company patterns' matches."""
    return scan.scan(text) + _company(text)


def _company(text: str) -> list[Finding]:
    return [
        Finding(COMPANY_PATTERN, m.start(), m.end(), 1.0)
        for pattern in settings.EGRESS_BLOCK_PATTERNS
        for m in re.finditer(pattern, text, re.IGNORECASE)
        if m.end() > m.start()
    ]


# --- before the payload is built: redact every part ------------------------------------


@dataclass(frozen=True)
class Redacted:
    question: str
    history: list[dict[str, str]]
    passages: list[dict[str, Any]]
    kinds_by_part: dict[str, list[str]]  # the parts something was redacted in


def redact_parts(
    *,
    question: str,
    history: Sequence[dict[str, str]],
    passages: Sequence[dict[str, Any]],
) -> Redacted:
    """Each finding in every part replaced by "[REDACTED:KIND]". Passages are numbered
    from 1 in the order given (the prompt keeps them in that order)."""
    by_part: dict[str, list[str]] = {}

    def clean(part: str, text: Any) -> Any:
        if not isinstance(text, str) or not text:
            return text
        found = findings(text)
        if not found:
            return text
        by_part[part] = scan.kinds(found)
        return scan.redact(text, found)

    cleaned_passages = []
    for n, passage in enumerate(passages, 1):
        cleaned = dict(passage)
        for field, suffix in _PASSAGE_FIELDS:
            if field in cleaned:
                cleaned[field] = clean(f"passage {n}{suffix}", cleaned[field])
        cleaned_passages.append(cleaned)
    return Redacted(
        question=clean(QUESTION, question),
        history=[
            {**turn, "content": clean(f"history {i}", turn["content"])}
            for i, turn in enumerate(history, 1)
        ],
        passages=cleaned_passages,
        kinds_by_part=by_part,
    )


def sent_parts(
    by_part: dict[str, list[str]], *, history: int, history_sent: int, passages_sent: int
) -> dict[str, list[str]]:
    """`by_part` without the parts the prompt left out: the oldest turns, the passages
    that did not fit."""
    sent = {QUESTION}
    sent |= {f"history {i}" for i in range(history - history_sent + 1, history + 1)}
    sent |= {f"passage {n}{sfx}" for n in range(1, passages_sent + 1) for _, sfx in _PASSAGE_FIELDS}
    return {part: kinds for part, kinds in by_part.items() if part in sent}


# --- in the decision: scan the messages as they would be sent --------------------------


def findings_by_part(request: ExternalRequest) -> dict[str, list[str]]:
    """The kinds found in each part of `request.messages`, parts in message order.

    Every character of every message is scanned. The user turn is scanned part by part
    (each passage's text, title and section, the question) and the framing between them
    on its own, so a passage is scanned once however many questions send it (the
    scanner keeps results per text). A match cannot straddle a part and its framing:
    the framing ("[n] (", " › ", ")", newlines, "Question: ") breaks every pattern. The
    company patterns run over each whole message.
    """
    messages = request.messages
    # The prompt's shape: the rules, the last turns of the history, the user turn.
    history_offset = len(request.history) - (len(messages) - 2)
    found: dict[str, set[str]] = {}
    for i, message in enumerate(messages):
        content = message.get("content") or ""
        if i == 0 and message.get("role") == "system":
            parts = [(0, len(content), SYSTEM)]
        elif i == len(messages) - 1:
            parts = _user_turn_parts(content, request.passages, request.question)
        elif history_offset >= 0:
            parts = [(0, len(content), f"history {history_offset + i}")]
        else:
            parts = []
        hits = _company(content)
        for start, end in _segments(len(content), parts):
            hits += [
                Finding(f.kind, f.start + start, f.end + start, f.score)
                for f in scan.scan(content[start:end])
            ]
        for f in sorted(hits, key=lambda f: f.start):
            names = [name for start, end, name in parts if f.start < end and start < f.end]
            for name in names or [f"message {i + 1}"]:
                found.setdefault(name, set()).add(f.kind)
    return {part: sorted(kinds) for part, kinds in found.items()}


def _segments(length: int, parts: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """0..length cut at the parts' edges: the parts and the framing between them."""
    cuts = sorted({0, length, *(edge for start, end, _ in parts for edge in (start, end))})
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]


def _user_turn_parts(
    content: str, passages: Sequence[dict[str, Any]], question: str
) -> list[tuple[int, int, str]]:
    """Where each passage's title, section and text, and the question, lie in the user
    turn: found in order, after each passage's header as the prompt writes it."""
    spans: list[tuple[int, int, str]] = []
    cursor = 0
    for passage in passages:
        n = passage.get("n")
        header = passage_header(n, passage) if n is not None else ""
        at = content.find(header, cursor) if header else -1
        if at < 0:
            continue
        within = 0
        for field, suffix in _PASSAGE_FIELDS[1:]:
            value = str(passage.get(field) or "")
            k = header.find(value, within) if value else -1
            if k >= 0:
                spans.append((at + k, at + k + len(value), f"passage {n}{suffix}"))
                within = k + len(value)
        cursor = at + len(header)
        text = passage.get("text") or ""
        t = content.find(text, cursor) if text else -1
        if t >= 0:
            spans.append((t, t + len(text), f"passage {n}"))
            cursor = t + len(text)
    q = content.rfind(question) if question else -1
    if q >= 0:
        spans.append((q, q + len(question), QUESTION))
    return spans


def describe(by_part: dict[str, list[str]]) -> str:
    """The decision's reason, in plain words: what was found where."""
    clauses = [
        f"{_where(part)} contains what looks like "
        f"{_and([kind.lower().replace('_', ' ') for kind in kinds])}"
        for part, kinds in by_part.items()
    ]
    sentence = "; ".join(clauses)
    return sentence[:1].upper() + sentence[1:] + ": it stays on our servers."


def _where(part: str) -> str:
    words = part.split()
    if part == QUESTION:
        return "your question"
    if part == SYSTEM:
        return "the instructions"
    if words[0] == "history":
        return f"message {words[1]} of this conversation"
    if words[0] == "passage" and len(words) == 3:
        return f"the {'section name' if words[2] == 'section' else 'title'} of passage {words[1]}"
    if words[0] == "message":
        return "the request"
    return part


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
