"""What the egress gate decides on and what it decides: the `ExternalRequest` (exactly
the messages that would leave, and where they came from), the `Decision` with every
`Reason` in plain words, and the conversation facts the decision reads
(`ConversationSoFar`). Kept apart from the rules (apps/routing/gate.py) so the audit
writer and the chat can name them without the gate's machinery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from apps.routing.llm import request_sha256
from apps.routing.providers import Provider


class ConversationSoFar(Protocol):
    """What the gate reads of the conversation a question belongs to (the chat's
    Conversation satisfies it): the labels its turns touched, as recorded then, and the
    documents they retrieved, whose labels are read again now."""

    @property
    def touched_labels(self) -> list[str]: ...

    def retrieved_document_ids(self) -> list[Any]: ...


class EgressRefused(Exception):
    """`send` was asked to send something the gate did not allow."""


@dataclass(frozen=True)
class Reason:
    code: str
    message: str  # plain words, shown to the asker


@dataclass(frozen=True)
class ExternalRequest:
    """Exactly what would leave: `messages`. The rest says where it came from."""

    messages: list[dict[str, str]]
    question: str
    history: list[dict[str, str]]
    chunks: list[dict[str, Any]]  # {"chunk_id", "document_id"} of each passage sent
    passages: list[dict[str, Any]] = field(default_factory=list)  # numbered, as in messages
    redactions: list[str] = field(default_factory=list)  # kinds redacted before sending
    # The same per part ("question", "history 2", "passage 1 title", …): egress_scan.py.
    redacted_by_part: dict[str, list[str]] = field(default_factory=dict)

    def sha256(self) -> str:
        return payload_sha256(self.messages)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: list[Reason]
    provider: str = ""
    model: str = ""
    payload_sha256: str = ""
    labels: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    findings_by_part: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        return " ".join(r.message for r in self.reasons)


def payload_sha256(messages: Sequence[dict[str, str]]) -> str:
    """What a decision is bound to: the messages as canonical JSON. The bytes that then
    leave are hashed by the client itself (`StreamResult.sent_sha256`, in `llm.call`)."""
    return request_sha256(list(messages))


def failed_decision(err: Exception, provider: Provider | None, sha: str) -> Decision:
    """A denial for an error on the way out (deciding, building, configuration)."""
    return Decision(
        allowed=False,
        reasons=[
            Reason(
                "error",
                f"The egress check failed ({type(err).__name__}), so nothing was sent: "
                "the answer stays on our servers.",
            )
        ],
        provider=getattr(provider, "name", ""),
        model=getattr(provider, "model", ""),
        payload_sha256=sha,
    )
