"""What the chat writes to the audit trail: every event of a conversation's turn names who,
which conversation and which message; a passage appears without its text, in the trail
and on the page alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.assistant.models import Conversation, Message
from apps.audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# What the chat.answer event keeps of each citation.
CITATION_FIELDS = ("n", "chunk_id", "document_id", "label", "by")


def chat_event(
    *,
    user: AbstractBaseUser,
    action: str,
    conversation: Conversation,
    message: Message,
    details: dict[str, Any],
) -> None:
    """An audit event of a conversation's turn, in the caller's transaction."""
    audit_record(
        actor=user,
        action=action,
        target=conversation,
        details={"conversation_id": str(conversation.pk), "message_id": message.pk, **details},
    )


def passage_public(passage: dict[str, Any]) -> dict[str, Any]:
    """A passage as it goes into the audit trail and to the page: no text."""
    return {k: v for k, v in passage.items() if k != "text"}


def citations_audited(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: c[k] for k in CITATION_FIELDS} for c in citations]
