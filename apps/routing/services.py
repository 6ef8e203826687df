"""Writes of the routing app: the policy, provider access, usage, and their audit events."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.db.models import F

from apps.audit.services import audit_record
from apps.routing.decision import Decision, ExternalRequest
from apps.routing.limits import asker_groups, today
from apps.routing.llm import StreamResult
from apps.routing.models import AskerUsage, EgressPolicy, ProviderAccess, ProviderUsage
from apps.routing.providers import Provider

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, Group

POLICY_FIELDS = ("escalation_enabled", "non_sensitive_labels", "pii_mode", "auto_escalate")


def _policy_state(policy: EgressPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in POLICY_FIELDS}


def policy_update(*, actor: AbstractBaseUser | None, **changes: Any) -> EgressPolicy:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not policy fields: {sorted(unknown)}")
    with transaction.atomic():
        policy, _ = EgressPolicy.objects.select_for_update().get_or_create(pk=1)
        before = _policy_state(policy)
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.updated_by = actor if actor is not None and actor.is_authenticated else None  # type: ignore[assignment]  # auth.User
        policy.save()
        audit_record(
            actor=actor,
            action="policy.changed",
            target=policy,
            details={"policy": "egress", "before": before, "after": _policy_state(policy)},
        )
    return policy


def provider_access_set(
    *,
    actor: AbstractBaseUser | None,
    provider: str,
    groups: list[Group],
    daily_token_budget: int,
    daily_cost_budget: Decimal,
) -> ProviderAccess:
    with transaction.atomic():
        access, _ = ProviderAccess.objects.select_for_update().get_or_create(provider=provider)
        access.daily_token_budget = daily_token_budget
        access.daily_cost_budget = daily_cost_budget
        access.save()
        access.groups.set(groups)
        audit_record(
            actor=actor,
            action="policy.changed",
            target=access,
            details={
                "policy": "provider_access",
                "provider": provider,
                "groups": sorted(g.name for g in groups),
                "daily_token_budget": daily_token_budget,
                "daily_cost_budget": str(daily_cost_budget),
            },
        )
    return access


def decision_record(
    *,
    user: AbstractBaseUser,
    conversation: models.Model,
    decision: Decision,
    request: ExternalRequest,
    trigger: str,
) -> None:
    audit_record(
        actor=user,
        action="routing.decision",
        target=conversation,
        details={
            "conversation_id": str(conversation.pk),
            "trigger": trigger,
            "outcome": "allow" if decision.allowed else "deny",
            "reasons": [{"code": r.code, "message": r.message} for r in decision.reasons],
            "provider": decision.provider,
            "model": decision.model,
            "payload_sha256": decision.payload_sha256,
            "labels": decision.labels,
            "findings": decision.findings,
            "findings_by_part": decision.findings_by_part,
            "redactions": request.redactions,
            "redacted_by_part": request.redacted_by_part,
            "chunks": request.chunks,
        },
    )


def llm_call_record(
    *,
    user: AbstractBaseUser,
    conversation: models.Model,
    message_id: int,
    where: str,
    provider: str,
    model: str,
    result: StreamResult,
    prompt_tokens: int,
    cost: Decimal,
    error: str,
) -> None:
    """The `llm.call` audit event of one model call, local or external.

    `prompt_tokens` is our own count, for a server that reports none; the payload hash is
    of the request body bytes the client sent (`StreamResult.sent_sha256`)."""
    audit_record(
        actor=user,
        action="llm.call",
        target=conversation,
        details={
            "conversation_id": str(conversation.pk),
            "message_id": message_id,
            "where": where,
            "provider": provider,
            "model": model,
            # Empty when the request never left (refused before the bytes went).
            "payload_sha256": result.sent_sha256,
            "prompt_tokens": result.prompt_tokens or prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cost": str(cost),
            "latency_ms": round(result.total_s * 1000),
            "first_token_ms": (
                round(result.first_token_s * 1000) if result.first_token_s is not None else None
            ),
            "outcome": "failed" if error else "ok",
            "error": error,
        },
    )


def external_call_record(
    *,
    user: AbstractBaseUser,
    conversation: models.Model,
    message_id: int,
    provider: Provider,
    result: StreamResult,
    error: str,
) -> None:
    """Count the call against today's budgets (the provider's, the asker's and each of
    their groups' that may use it) and audit it, in one transaction."""
    tokens = result.prompt_tokens + result.completion_tokens
    cost = provider.cost(tokens)
    with transaction.atomic():
        if result.sent_sha256:  # something left: it counts, answered or not
            day = today()
            usage, _ = ProviderUsage.objects.get_or_create(provider=provider.name, day=day)
            ProviderUsage.objects.filter(pk=usage.pk).update(
                tokens=F("tokens") + tokens, cost=F("cost") + cost, calls=F("calls") + 1
            )
            subjects = [(AskerUsage.Scope.USER, user.pk)] + [
                (AskerUsage.Scope.GROUP, group.pk) for group in asker_groups(user, provider.name)
            ]
            for scope, subject_id in subjects:
                row, _ = AskerUsage.objects.get_or_create(
                    provider=provider.name, day=day, scope=scope, subject_id=subject_id
                )
                AskerUsage.objects.filter(pk=row.pk).update(
                    tokens=F("tokens") + tokens, cost=F("cost") + cost, calls=F("calls") + 1
                )
        llm_call_record(
            user=user,
            conversation=conversation,
            message_id=message_id,
            where="external",
            provider=provider.name,
            model=provider.model,
            result=result,
            prompt_tokens=0,  # a provider reports its own count in the stream
            cost=cost,
            error=error,
        )
