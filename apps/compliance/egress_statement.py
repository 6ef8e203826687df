"""The egress report as a signed statement: the period's content (apps/compliance/
egress_report.py), checked against the audit chain and its seals, stated in one sentence,
and signed with the seal key (Ed25519), so it can be handed over and checked later.

The statement attests only what holds: the chain verifies against its seals and a seal
covers the period's last event (when the latest does not, the chain head is sealed now,
after the check), and no external call carried a passage labelled anything but public or
left without an allowing decision. Otherwise it says which of these failed, instead of
attesting.

Report format "enclave-egress-report/1": one JSON object; ``signature`` holds
``{"alg": "Ed25519", "key_id": …, "value": <hex>}`` over the canonical JSON
(apps.audit.chain.canonical_json) of the object without ``signature``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils import timezone

from apps.audit.chain import canonical_json, format_time
from apps.audit.seal import Seal, SealError, audit_seal
from apps.audit.seal_keys import SealKeyError, key_id, sign, signature_valid, trusted_public_key
from apps.audit.seal_sinks import SinkError
from apps.audit.seal_verify import verify_sealed
from apps.audit.services import audit_record
from apps.compliance.egress_report import SENSITIVE_LABELS, Period, collect

REPORT_FORMAT = "enclave-egress-report/1"


def egress_report_build(*, period: Period, generated_by: str) -> dict[str, Any]:
    """The signed report of `period` (see the module docstring)."""
    content = collect(period)
    chain = _chain_check(last_id=content["events"]["last_id"])
    findings = [e for e in content["sent"] if e["problems"]]
    report = {
        "format": REPORT_FORMAT,
        "generated_at": format_time(timezone.now()),
        "generated_by": generated_by,
        **content,
        "chain": chain,
        "attested": chain["intact"] and chain["sealed"] and not findings,
        "statement": _statement(content, chain, findings),
    }
    signature, kid = sign(canonical_json(report).encode())
    report["signature"] = {"alg": "Ed25519", "key_id": kid, "value": signature}
    return report


def _chain_check(*, last_id: int) -> dict[str, Any]:
    report = verify_sealed()
    seal: Seal | None = report.seal
    problem = "" if report.intact else report.summary()
    if report.intact and (seal is None or seal.last_id < last_id):
        try:
            seal = audit_seal().seal  # walks the events since the last seal first
        except (SealError, SealKeyError, SinkError, OSError) as err:
            problem = f"the period's last event #{last_id} could not be sealed: {err}"
    sealed = report.intact and not problem and seal is not None and seal.last_id >= last_id
    return {
        "intact": report.intact,
        "sealed": sealed,
        "broken_at": report.broken_at,
        "problem": problem,
        "seal": None
        if seal is None
        else {
            "seq": seal.seq,
            "last_id": seal.last_id,
            "last_hash": seal.last_hash,
            "sealed_at": seal.sealed_at,
            "key_id": seal.key_id,
        },
    }


def _statement(content: dict[str, Any], chain: dict[str, Any], findings: list[dict]) -> str:
    period = content["period"]
    span = f"between {period['start']} and {period['end']} (UTC)"
    if not chain["intact"]:
        return (
            f"NOT ATTESTED: the audit chain does not verify ({chain['problem']}). Nothing in "
            f"this report about the period {span} can be relied on."
        )
    if not chain["sealed"]:
        return f"NOT ATTESTED: no seal covers the period {span}: {chain['problem']}"
    seal = chain["seal"]
    anchor = (
        f"chain intact up to seal #{seal['seq']} (event #{seal['last_id']}, sealed "
        f"{seal['sealed_at']})"
    )
    calls = len(content["sent"])
    if findings:
        named = "; ".join(
            f"event #{e['event_id']}: {', '.join(e['problems'])}" for e in findings[:20]
        )
        more = f" and {len(findings) - 20} more" if len(findings) > 20 else ""
        return (
            f"NOT ATTESTED: {len(findings)} of {calls} external calls {span} break the egress "
            f"rule ({named}{more}); {anchor}."
        )
    labels = ", ".join(SENSITIVE_LABELS[:-1]) + " or " + SENSITIVE_LABELS[-1]
    return (
        f"No passage labelled {labels} was sent to an external provider {span}; "
        f"{calls} answer{'s' if calls != 1 else ''} left the premises, "
        f"{len(content['denied'])} escalation{'s were' if len(content['denied']) != 1 else ' was'} "
        f"denied; {anchor}."
    )


def report_signature_valid(report: dict[str, Any]) -> bool:
    """Whether `report` is unchanged since it was signed with the trusted seal key."""
    signature = report.get("signature")
    if not isinstance(signature, dict):
        return False
    key = trusted_public_key()
    unsigned = {k: v for k, v in report.items() if k != "signature"}
    return signature.get("key_id") == key_id(key) and signature_valid(
        canonical_json(unsigned).encode(), str(signature.get("value", "")), key
    )


def report_sha256(report: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(report).encode()).hexdigest()


def egress_report_create(*, period: Period, actor: Any | None) -> dict[str, Any]:
    """Build the signed report and record in the trail that it was made (by whom, for
    which period, with what result), without its content."""
    name = actor.get_username() if actor is not None and actor.is_authenticated else "manage.py"
    report = egress_report_build(period=period, generated_by=name)
    audit_record(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action="audit.egress_reported",
        details={
            "from": report["period"]["from"],
            "to": report["period"]["to"],
            "attested": report["attested"],
            "sent": len(report["sent"]),
            "denied": len(report["denied"]),
            "seal": (report["chain"]["seal"] or {}).get("seq"),
            "report_sha256": report_sha256(report),
        },
    )
    return report
