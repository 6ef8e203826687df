"""The egress report of a period: every answer that left the premises, every escalation
the gate denied, and totals, gathered from the audit trail (apps/compliance/
egress_statement.py then checks the chain, states the result and signs it).

What it reads: ``llm.call`` events to an external provider whose payload hash is set
(bytes left; answered or failed, they count) and ``routing.decision`` events. A call is
matched to the decision that allowed it: the latest allowing decision of the same
conversation before the call (also before the period, for a call just after midnight).
The labels, PII findings and redactions of what was sent are that decision's: the gate
records exactly what it let through. A call without an allowing decision is a finding of
its own.

Times are UTC; a period is from the first day's midnight to the midnight after the last
day. Events are read in id batches over the period's id range (ids follow time), so memory
grows with the number of external calls and denials, not with the number of events.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from apps.audit.chain import format_time
from apps.audit.models import AuditEvent
from apps.audit.siem import usernames
from apps.core.labels import Label, label_or_restricted

# What the statement says never left: every label but public (and anything unknown,
# which counts as restricted).
SENSITIVE_LABELS = (Label.INTERNAL.value, Label.CONFIDENTIAL.value, Label.RESTRICTED.value)
BATCH = 5000


class PeriodError(ValueError):
    """A period that cannot be reported on; the message says how to fix it."""


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date

    @classmethod
    def parse(cls, first: str, last: str) -> Period:
        try:
            period = cls(date.fromisoformat(first), date.fromisoformat(last))
        except ValueError as err:
            raise PeriodError(f"dates are YYYY-MM-DD, e.g. 2026-10-01 ({err})") from err
        if period.last_day < period.first_day:
            raise PeriodError(f"--to {last} is before --from {first}")
        return period

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=UTC)

    def as_dict(self) -> dict[str, str]:
        return {
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "start": format_time(self.start),
            "end": format_time(self.end),
        }


def period_ids(period: Period) -> tuple[int, int]:
    """The first and last event id inside the period (0, 0 when none)."""
    events = AuditEvent.objects.filter(time__gte=period.start, time__lt=period.end)
    first = events.order_by("id").values_list("id", flat=True).first()
    if first is None:
        return 0, 0
    last = events.order_by("-id").values_list("id", flat=True).first()
    return first, last or first


def _rows(first: int, last: int) -> Iterator[tuple[Any, ...]]:
    """The period's decisions and external calls, in id order, in batches."""
    sql = (
        "SELECT id, time, actor_pk, action, conversation_id, details_json FROM audit_auditevent "
        "WHERE id > %s AND id <= %s AND (action = 'routing.decision' OR left_premises) "
        "ORDER BY id LIMIT %s"
    )
    after = first - 1
    with connection.cursor() as cursor:
        while after < last:
            cursor.execute(sql, [after, last, BATCH])
            batch = cursor.fetchall()
            if not batch:
                return
            yield from batch
            after = batch[-1][0]


def _decision_before(conversation_id: str, before_id: int) -> dict[str, Any] | None:
    """The latest allowing decision of a conversation before an event, wherever it is."""
    candidates = (
        AuditEvent.objects.filter(
            conversation_id=conversation_id, action="routing.decision", id__lt=before_id
        )
        .order_by("-id")
        .values_list("id", "details_json")[:20]
    )
    for event_id, details_json in candidates:
        details = json.loads(details_json)
        if details.get("outcome") == "allow":
            return {"event_id": event_id, **details}
    return None


def _cost(value: Any) -> Decimal:
    try:
        return Decimal(str(value or "0"))
    except InvalidOperation:
        return Decimal("0")


def _kinds(value: Any) -> list[str]:
    return sorted({str(v) for v in value}) if isinstance(value, list) else []


def collect(period: Period) -> dict[str, Any]:
    """The report's content before the chain check: what left, what was denied, totals."""
    first, last = period_ids(period)
    allowed: dict[str, dict[str, Any]] = {}
    sent: list[dict[str, Any]] = []
    denied: list[dict[str, Any]] = []
    for event_id, moment, actor_pk, action, conversation_id, details_json in (
        _rows(first, last) if first else iter(())
    ):
        details = json.loads(details_json)
        if action == "routing.decision":
            if details.get("outcome") == "allow":
                allowed[conversation_id] = {"event_id": event_id, **details}
            else:
                denied.append(_denial(event_id, moment, actor_pk, conversation_id, details))
            continue
        if not details.get("payload_sha256"):
            continue  # refused before any byte left
        decision = allowed.pop(conversation_id, None) or _decision_before(conversation_id, event_id)
        sent.append(_sent(event_id, moment, actor_pk, conversation_id, details, decision))
    names = usernames({e["user_id"] for e in sent + denied} - {None})
    for entry in sent + denied:
        entry["user"] = _name(entry["user_id"], names)
    return {
        "period": period.as_dict(),
        "events": {"first_id": first, "last_id": last, "count": (last - first + 1) if first else 0},
        "sent": sent,
        "denied": denied,
        "totals": _totals(sent),
    }


def _name(user_id: int | None, names: dict[int, str]) -> str:
    if user_id is None:
        return "(system)"
    return names.get(user_id) or f"(deleted user #{user_id})"


def _denial(
    event_id: int, moment: datetime, actor_pk: int | None, conversation_id: str, d: dict
) -> dict[str, Any]:
    given = d.get("reasons")
    reasons: list[Any] = given if isinstance(given, list) else []
    return {
        "event_id": event_id,
        "time": format_time(moment),
        "user_id": actor_pk,
        "conversation_id": conversation_id,
        "trigger": str(d.get("trigger") or ""),
        "provider": str(d.get("provider") or ""),
        "reasons": [
            {"code": str(r.get("code", "")), "message": str(r.get("message", ""))}
            for r in reasons
            if isinstance(r, dict)
        ],
        "labels": _kinds(d.get("labels")),
        "findings": _kinds(d.get("findings")),
    }


def _sent(
    event_id: int,
    moment: datetime,
    actor_pk: int | None,
    conversation_id: str,
    call: dict[str, Any],
    decision: dict[str, Any] | None,
) -> dict[str, Any]:
    decision = decision or {}
    labels = [label_or_restricted(x) for x in _kinds(decision.get("labels"))]
    problems = []
    if not decision:
        problems.append("no routing.decision allowed this call")
    leaked = sorted({x for x in labels if x in SENSITIVE_LABELS})
    if leaked:
        problems.append("passages labelled " + ", ".join(leaked) + " were sent")
    chunks = decision.get("chunks")
    return {
        "event_id": event_id,
        "time": format_time(moment),
        "user_id": actor_pk,
        "conversation_id": conversation_id,
        "provider": str(call.get("provider") or ""),
        "model": str(call.get("model") or ""),
        "outcome": str(call.get("outcome") or ""),
        "payload_sha256": str(call.get("payload_sha256") or ""),
        "prompt_tokens": int(call.get("prompt_tokens") or 0),
        "completion_tokens": int(call.get("completion_tokens") or 0),
        "cost": str(_cost(call.get("cost"))),
        "decision_event_id": decision.get("event_id"),
        "trigger": str(decision.get("trigger") or ""),
        "labels": sorted(set(labels)),
        "passages": len(chunks) if isinstance(chunks, list) else 0,
        "pii_findings": _kinds(decision.get("findings")),
        "redactions": _kinds(decision.get("redactions")),
        "problems": problems,
    }


def _totals(sent: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, dict[str, dict[str, Any]]] = {"user": {}, "group": {}, "provider": {}}
    groups = _groups_of({e["user_id"] for e in sent} - {None})

    def add(kind: str, name: str, entry: dict[str, Any]) -> None:
        row = by[kind].setdefault(
            name,
            {
                kind: name,
                "calls": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost": Decimal(0),
            },
        )
        row["calls"] += 1
        row["prompt_tokens"] += entry["prompt_tokens"]
        row["completion_tokens"] += entry["completion_tokens"]
        row["cost"] += Decimal(entry["cost"])

    overall: dict[str, Any] = {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": Decimal(0),
    }
    for entry in sent:
        add("user", entry["user"], entry)
        add("provider", f"{entry['provider']} / {entry['model']}", entry)
        for group in groups.get(entry["user_id"], ["(no group)"]):
            add("group", group, entry)
        overall["calls"] += 1
        for key in ("prompt_tokens", "completion_tokens"):
            overall[key] += entry[key]
        overall["cost"] += Decimal(entry["cost"])

    def listed(kind: str) -> list[dict[str, Any]]:
        rows = sorted(by[kind].values(), key=lambda r: (-r["calls"], r[kind]))
        return [{**r, "cost": str(r["cost"])} for r in rows]

    return {
        **{k: (str(v) if k == "cost" else v) for k, v in overall.items()},
        "by_user": listed("user"),
        "by_group": listed("group"),
        "by_provider": listed("provider"),
    }


def _groups_of(user_ids: set[int]) -> dict[int, list[str]]:
    """Each user's groups as they are now (the trail does not record memberships)."""
    found: dict[int, list[str]] = defaultdict(list)
    memberships = get_user_model().groups.through.objects.filter(user_id__in=user_ids)
    for user_id, name in memberships.values_list("user_id", "group__name").order_by("group__name"):
        found[user_id].append(name)
    return found
