"""The PII/secret scanner: the only one in the product.

`scan(text)` finds personal data and credentials in text that might leave the premises;
`redact` replaces what it found; `kinds` names what was found for reasons and the audit,
never the matched text.

Personal data comes from presidio-analyzer (apps/routing/pii.py, loaded lazily: call its
`warm_up()` at process start to pay that early), credentials from our own patterns
(apps/routing/secret_patterns.py); both run in one presidio engine, and overlapping
findings are merged here.

Errors are never swallowed: the egress gate treats an exception as "deny".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apps.routing import pii
from apps.routing.secret_patterns import SECRET_KINDS


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    score: float


ALL_KINDS: frozenset[str] = SECRET_KINDS | pii.PII_KINDS

# When findings overlap, the merged span is named after the most specific kind among them
# (a JWT inside a Bearer header is a JWT; user:pass@host is a password, not an email), then
# the higher score.
_PRIORITY = {
    "PRIVATE_KEY": 0,
    "JWT": 1,
    "AWS_ACCESS_KEY": 2,
    "GITHUB_TOKEN": 2,
    "SLACK_TOKEN": 2,
    "API_KEY": 3,
    "PASSWORD_IN_URL": 4,
    "BEARER_TOKEN": 5,
    "BASIC_AUTH": 5,
    "PASSWORD": 6,
    "SECRET": 7,
    "CREDIT_CARD": 8,
    "IBAN_CODE": 8,
    "US_SSN": 9,
    "UK_NINO": 9,
    "CRYPTO": 9,
    "EMAIL_ADDRESS": 10,
    "IP_ADDRESS": 11,
    "PHONE_NUMBER": 12,
}

_ENTITIES = sorted(ALL_KINDS)


def scan(text: str) -> list[Finding]:
    """Every piece of personal data or credential in `text`, sorted by start, overlaps merged.

    Raises on any internal error (the egress gate reads an exception as "deny")."""
    if not isinstance(text, str):
        raise TypeError(f"scan() needs str, got {type(text).__name__}")
    if not text:
        return []
    results = pii.analyze(text, _ENTITIES)
    raw: list[Finding] = []
    for r in results:
        threshold = pii.PII_THRESHOLDS.get(r.entity_type, 0.0)
        if r.entity_type not in ALL_KINDS or r.score < threshold:
            continue
        if not (0 <= r.start < r.end <= len(text)):
            raise ValueError(f"scanner returned a span outside the text: {r.start}..{r.end}")
        raw.append(Finding(r.entity_type, r.start, r.end, float(r.score)))
    return _merge(raw)


def _better(a: Finding, b: Finding) -> Finding:
    key_a = (-_PRIORITY.get(a.kind, 99), a.score, a.end - a.start)
    key_b = (-_PRIORITY.get(b.kind, 99), b.score, b.end - b.start)
    return a if key_a >= key_b else b


def _merge(findings: Iterable[Finding]) -> list[Finding]:
    """Overlapping spans become one span covering them all (redact more, never less),
    named after the strongest finding among them."""
    ordered = sorted(findings, key=lambda f: (f.start, -f.end))
    merged: list[Finding] = []
    for f in ordered:
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            best = _better(last, f)
            merged[-1] = Finding(
                best.kind, last.start, max(last.end, f.end), max(last.score, f.score)
            )
        else:
            merged.append(f)
    return merged


def redact(text: str, findings: list[Finding]) -> str:
    """Each finding's span replaced by "[REDACTED:KIND]"; overlapping findings are merged."""
    out: list[str] = []
    pos = 0
    for f in _merge(findings):
        if not (0 <= f.start < f.end <= len(text)):
            raise ValueError(f"finding {f.kind} {f.start}..{f.end} lies outside the text")
        out.append(text[pos : f.start])
        out.append(f"[REDACTED:{f.kind}]")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def kinds(findings: Iterable[Finding | Any]) -> list[str]:
    """Sorted unique kinds: safe to show in reasons and to write to the audit."""
    return sorted({f.kind for f in findings})

