"""The egress gate: the one way text leaves the premises.

`prepare` builds the exact messages an external model would get; `decide` says whether
they may go, with every reason; `send` is the only code that talks to an external
provider, and it refuses to run without an allowing decision on the very same payload.
Its HTTP client hands the request's body bytes to a last check before they go out: they
must be the decided payload, nothing more, and their SHA-256 is what the audit records.

Rules (DESIGN.md, Egress): every chunk's document label — read from the database now,
never from the vector payload — is non-sensitive; the conversation never touched a
sensitive chunk; every part of the messages as they would be sent (question, history,
each passage's text, title and section) passes the PII/secret scan (apps/routing/
egress_scan.py), or is redacted first in redact mode; a provider is configured, the
asker's group may use it, and no daily limit or rate is reached (apps/routing/limits.py).
Unknown or missing label → restricted. Any exception while deciding → deny.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from apps.core import metrics as core_metrics
from apps.core.labels import Label
from apps.knowledge.selectors import document_labels
from apps.routing import egress_scan, limits
from apps.routing.decision import (
    ConversationSoFar,
    Decision,
    EgressRefused,
    ExternalRequest,
    Reason,
    failed_decision,
)
from apps.routing.llm import StreamResult, stream_chat
from apps.routing.models import EgressPolicy
from apps.routing.prompt import build_prompt
from apps.routing.providers import Provider, answer_tokens
from apps.routing.tokens import count_message_tokens

if TYPE_CHECKING:
    import httpx2
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)

RESTRICTED = Label.RESTRICTED.value


def current_policy() -> EgressPolicy:
    policy, _ = EgressPolicy.objects.get_or_create(pk=1)
    return policy


def non_sensitive(policy: EgressPolicy) -> frozenset[str]:
    """The labels that may leave. Only real labels count (anything else an admin typed is
    ignored), and never `restricted`: a missing or unknown label reads as restricted, so
    allowing restricted would let unlabelled text out."""
    named = frozenset(str(x) for x in policy.non_sensitive_labels or [])
    return (named & frozenset(Label.values)) - {RESTRICTED}


# --- prepare --------------------------------------------------------------------------


def prepare(
    *,
    question: str,
    passages: Sequence[dict[str, Any]],
    history: Sequence[dict[str, str]],
    policy: EgressPolicy,
    provider: Provider | None,
) -> ExternalRequest:
    """The messages an external model would get, built here and nowhere else.

    In redact mode every part (question, history, each passage's text, title and section)
    is redacted first; the decision then scans what is left, so a finding the redactor
    missed still blocks.
    """
    bare = [{k: v for k, v in p.items() if k != "n"} for p in passages]
    redacted: dict[str, list[str]] = {}
    if policy.pii_mode == policy.PiiMode.REDACT:
        cleaned = egress_scan.redact_parts(question=question, history=history, passages=bare)
        question, history, bare = cleaned.question, cleaned.history, cleaned.passages
        redacted = cleaned.kinds_by_part
    prompt = build_prompt(
        question=question,
        passages=bare,
        history=history,
        count=count_message_tokens,
        # External models have large windows; keep the request as small as ours anyway.
        context_window=8192,
        answer_tokens=answer_tokens(provider),
    )
    redacted = egress_scan.sent_parts(
        redacted,
        history=len(history),
        history_sent=prompt.history_turns,
        passages_sent=len(prompt.passages),
    )
    return ExternalRequest(
        messages=prompt.messages,
        question=question,
        history=list(history),
        chunks=[
            {"chunk_id": p.get("chunk_id"), "document_id": p.get("document_id")}
            for p in prompt.passages
        ],
        passages=prompt.passages,
        redactions=sorted({kind for kinds in redacted.values() for kind in kinds}),
        redacted_by_part=redacted,
    )


# --- decide ---------------------------------------------------------------------------


def decide(
    *,
    user: AbstractBaseUser,
    conversation: ConversationSoFar,
    request: ExternalRequest,
    provider: Provider | None,
    policy: EgressPolicy | None = None,
) -> Decision:
    """Allow or deny `request`, with every reason. Never raises: an error denies."""
    try:
        decision = _decide(user, conversation, request, provider, policy or current_policy())
    except Exception as err:  # noqa: BLE001 - any failure while deciding means "local"
        log.exception("egress decision failed")
        decision = failed_decision(err, provider, _safe_sha(request))
    core_metrics.egress_decided(decision)  # Prometheus (apps/core/metrics.py); never raises
    return decision


def prepare_and_decide(
    *,
    user: AbstractBaseUser,
    conversation: ConversationSoFar,
    question: str,
    passages: Sequence[dict[str, Any]],
    history: Sequence[dict[str, str]],
    provider: Provider | None,
    policy: EgressPolicy,
) -> tuple[ExternalRequest, Decision]:
    """`prepare` then `decide`; a payload that cannot even be built is a denial too."""
    try:
        request = prepare(
            question=question, passages=passages, history=history, policy=policy,
            provider=provider,
        )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - any failure on the way out means "local"
        log.exception("egress payload could not be built")
        empty = ExternalRequest(messages=[], question=question, history=list(history), chunks=[])
        decision = failed_decision(err, provider, "")
        core_metrics.egress_decided(decision)
        return empty, decision
    return request, decide(
        user=user, conversation=conversation, request=request, provider=provider, policy=policy
    )


def _safe_sha(request: ExternalRequest) -> str:
    try:
        return request.sha256()
    except Exception:  # noqa: BLE001 - only for the record of a failed decision
        return ""


def _decide(
    user: AbstractBaseUser,
    conversation: ConversationSoFar,
    request: ExternalRequest,
    provider: Provider | None,
    policy: EgressPolicy,
) -> Decision:
    reasons: list[Reason] = []
    allowed_labels = non_sensitive(policy)

    # 1. Every chunk in the prompt: its document's label, from the database, now (read in
    # one query with the documents the conversation retrieved before, for rule 2).
    chunk_ids = [c.get("document_id") for c in request.chunks]
    earlier_ids = conversation.retrieved_document_ids()
    labels_all = document_labels([*chunk_ids, *earlier_ids])
    labels_now = {i: labels_all[i] for i in chunk_ids}
    chunk_labels = sorted(set(labels_now.values()))
    sensitive = sorted({lbl for lbl in labels_now.values() if lbl not in allowed_labels})
    if sensitive:
        reasons.append(
            Reason(
                "sensitive_context",
                f"This answer uses {_and(sensitive)} documents: they stay on our servers.",
            )
        )
    # 2. The conversation so far: once it touched a sensitive chunk, it stays local.
    taint = conversation_taint(
        conversation, allowed_labels, earlier_labels=[labels_all[i] for i in earlier_ids]
    )
    if taint:
        reasons.append(
            Reason(
                "tainted",
                f"This conversation used {_and(taint)} documents earlier: it stays on our "
                "servers for good. Start a new conversation to ask about public documents.",
            )
        )
    # 3. Every part of the messages as they would be sent: PII, secrets and the company's
    # patterns (what is left after redaction, in redact mode).
    by_part = egress_scan.findings_by_part(request)
    findings = sorted({kind for kinds in by_part.values() for kind in kinds})
    if by_part:
        reasons.append(Reason("pii", egress_scan.describe(by_part)))
    # The content's reasons come first: they hold whatever the configuration is.
    if not policy.escalation_enabled:
        reasons.append(
            Reason("escalation_off", "Sending questions to an external model is turned off.")
        )
    if provider is None:
        reasons.append(Reason("no_provider", "No external model is configured on this server."))
    else:
        reasons += limits.access_reasons(user, provider)
    # Counted only when everything else allows: a refused question costs no escalation.
    if not reasons and (rate := limits.rate_reason(user)) is not None:
        reasons.append(rate)
    allowed = not reasons
    if allowed:
        reasons.append(
            Reason(
                "allowed",
                "Every passage is from a non-sensitive document, the conversation is clean and "
                "no personal data or secret was found.",
            )
        )
    return Decision(
        allowed=allowed,
        reasons=reasons,
        provider=provider.name if provider else "",
        model=provider.model if provider else "",
        payload_sha256=request.sha256(),
        labels=chunk_labels,
        findings=findings,
        findings_by_part=by_part,
    )


def conversation_taint(
    conversation: ConversationSoFar, allowed_labels: frozenset[str], *, earlier_labels: list[str]
) -> list[str]:
    """The sensitive labels this conversation has touched; [] if it is clean.

    The labels recorded when each turn retrieved its chunks are sticky (a label relaxed
    later does not clean the conversation); `earlier_labels`, the same documents' labels
    now, count too (a label tightened later taints it as well).
    """
    touched = set(conversation.touched_labels or []) | set(earlier_labels)
    return sorted(lbl for lbl in touched if lbl not in allowed_labels)


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --- send -----------------------------------------------------------------------------


def send(
    *,
    decision: Decision,
    request: ExternalRequest,
    provider: Provider,
    result: StreamResult,
) -> Iterator[str]:
    """Stream the external model's answer to `request`. The only sender of text out.

    `result.sent_sha256` is the SHA-256 of the body bytes that actually left.
    """
    if not decision.allowed or decision.payload_sha256 != request.sha256():
        raise EgressRefused("the gate did not allow this payload")
    if decision.provider != provider.name:
        raise EgressRefused("the decision was made for another provider")
    expected = request.messages

    def last_check(http_request: httpx2.Request) -> None:
        data = json.loads(http_request.content)
        outgoing = list(data.get("messages") or [])
        if "system" in data:  # the Anthropic shape carries the system prompt apart
            outgoing = [{"role": "system", "content": data["system"]}, *outgoing]
        if outgoing != expected:
            raise EgressRefused("the request body is not the payload the gate allowed")

    yield from stream_chat(
        provider.endpoint(),
        request.messages,
        max_tokens=provider.max_tokens,
        result=result,
        on_request=last_check,
    )
