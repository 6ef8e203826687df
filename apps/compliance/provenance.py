"""A conversation's provenance: its audit events grouped into turns, one per question."""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events


@dataclass
class Turn:
    """One question of a conversation and everything recorded for it."""

    question: AuditEvent | None
    events: list[AuditEvent] = field(default_factory=list)

    @property
    def question_text(self) -> str:
        if self.question is None:
            return ""
        details = self.question.details
        text = details.get("question") or details.get("text") or self.question.target_repr
        return str(text)

    @property
    def left_premises(self) -> bool:
        return any(e.left_premises for e in self.events)


# The page shows at most this many events of one conversation; the event list, filtered
# by the conversation, pages through the rest.
PROVENANCE_LIMIT = 2000
_CONVERSATION_ID_MAX = AuditEvent._meta.get_field("conversation_id").max_length or 0


def conversation_provenance(*, conversation_id: str) -> list[Turn]:
    """Events of one conversation grouped into turns, each opened by its chat.question.

    A "question_id" in details ties an event to its question explicitly; otherwise an
    event belongs to the latest question before it.
    """
    if "\x00" in conversation_id or len(conversation_id) > _CONVERSATION_ID_MAX:
        return []  # no event can carry it (PostgreSQL text refuses NUL): none to ask for
    events = reveal_events(
        AuditEvent.objects.filter(conversation_id=conversation_id).order_by("id")[:PROVENANCE_LIMIT]
    )
    turns: list[Turn] = []
    by_question: dict[str, Turn] = {}
    for event in events:
        if event.action == "chat.question":
            asked = Turn(question=event, events=[event])
            turns.append(asked)
            key = event.details.get("question_id")
            by_question[str(key if key is not None else event.id)] = asked
            continue
        ref = event.details.get("question_id")
        turn = by_question.get(str(ref)) if ref is not None else None
        if turn is None:
            if not turns:
                turns.append(Turn(question=None))
            turn = turns[-1]
        turn.events.append(event)
    return turns
