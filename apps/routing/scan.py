"""The PII/secret scanner: the only one in the product.

`scan(text)` finds personal data and credentials in text that might leave the premises;
`redact` replaces what it found; `kinds` names what was found for reasons and the audit,
never the matched text.

Personal data comes from presidio-analyzer (apps/routing/pii.py, loaded lazily: call its
`warm_up()` at process start to pay that early), credentials from our own patterns
(apps/routing/secret_patterns.py); overlapping findings are merged here.

The egress gate scans every part of what would leave, passages included, so the scan is
kept cheap: a pattern or recognizer runs only where a looser check says it could match
(most text holds no candidate at all), phone numbers — libphonenumber, most of the cost —
are looked for only outside what was already found, and results are kept per text (a
passage is scanned when the payload is built and again in the decision; the system
prompt and earlier turns repeat from question to question).

Errors are never swallowed (nor kept): the egress gate treats an exception as "deny".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apps.routing import pii
from apps.routing.secret_patterns import REDACTED_PREFIX, SECRET_KINDS, SECRET_PATTERNS


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

_PII_ENTITIES = sorted(pii.PII_KINDS)
_PHONE = "PHONE_NUMBER"
# Texts whose findings are kept (a few MB at most: passages are ~1,000 characters).
_CACHE_SIZE = 2048


def scan(text: str) -> list[Finding]:
    """Every piece of personal data or credential in `text`, sorted by start, overlaps merged.

    Raises on any internal error (the egress gate reads an exception as "deny")."""
    if not isinstance(text, str):
        raise TypeError(f"scan() needs str, got {type(text).__name__}")
    if not text:
        return []
    return list(_scan(text))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _scan(text: str) -> tuple[Finding, ...]:
    lowered = text.lower()
    raw = [
        Finding(pattern.kind, start, end, pattern.score)
        for pattern in SECRET_PATTERNS
        if pattern.may_match(lowered)
        for start, end in pattern.spans(text)
    ]
    entities = pii.candidates(text, _PII_ENTITIES)
    others = [e for e in entities if e != _PHONE]
    if others:
        raw += _personal(text, text, others)
    if _PHONE in entities:
        # A phone number is looked for only outside what is already found: the digits of
        # an IBAN or a card are not read again as a phone number (with its retries).
        raw += _personal(text, _masked(text, raw), [_PHONE])
    return tuple(_merge(raw))


def _personal(text: str, searched: str, entities: list[str]) -> list[Finding]:
    found: list[Finding] = []
    for r in pii.analyze(searched, entities):
        threshold = pii.PII_THRESHOLDS.get(r.entity_type, 0.0)
        if r.entity_type not in ALL_KINDS or r.score < threshold:
            continue
        if not (0 <= r.start < r.end <= len(text)):
            raise ValueError(f"scanner returned a span outside the text: {r.start}..{r.end}")
        found.append(Finding(r.entity_type, r.start, r.end, float(r.score)))
    return found


def _masked(text: str, findings: list[Finding]) -> str:
    """`text` with each finding's span overwritten, same length (offsets hold): "|" is no
    digit, letter or phone separator, so nothing masked joins a number."""
    if not findings:
        return text
    chars = list(text)
    for f in findings:
        chars[f.start : f.end] = "|" * (f.end - f.start)
    return "".join(chars)


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
        out.append(f"{REDACTED_PREFIX}{f.kind}]")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def kinds(findings: Iterable[Finding | Any]) -> list[str]:
    """Sorted unique kinds: safe to show in reasons and to write to the audit."""
    return sorted({f.kind for f in findings})
