"""Credentials in text: our own patterns, since presidio knows no API keys, tokens or
passwords. Each pattern names its kind, its score, the part of the match it reports and
a check that keeps placeholders and plain words out.

The scanner (apps/routing/scan.py) runs them inside presidio's engine
(apps/routing/pii.py), so overlaps with personal data merge in one place. A new
credential is one row of SECRET_PATTERNS.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_B62 = r"A-Za-z0-9"

# What a redacted span becomes: "[REDACTED:KIND]" (apps/routing/scan.py writes it).
REDACTED_PREFIX = "[REDACTED:"


def _has_digit_and_letter(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _is_placeholder(value: str) -> bool:
    """${ENV}, <your-key>, {{ var }}, %s, *****, and our own [REDACTED:KIND]: the shape of
    a value, not a value (so redacted text scanned again passes)."""
    return value.startswith(("$", "<", "{", "%", REDACTED_PREFIX)) or set(value) <= set("*xX._-")


def _looks_like_secret_value(value: str) -> bool:
    """A value assigned to `token=`/`secret:`: long, not a placeholder, not a plain word."""
    if len(value) < 12 or _is_placeholder(value):
        return False
    if value.lower() in {"none", "null", "true", "false", "changeme", "redacted"}:
        return False
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )
    return classes >= 2 and not value.isalpha()


def _looks_like_password(value: str) -> bool:
    return len(value) >= 4 and not _is_placeholder(value)


def _is_jwt(value: str) -> bool:
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(decoded)
    except (binascii.Error, ValueError):
        return False
    return isinstance(data, dict) and ("alg" in data or "typ" in data)


def _url_password(value: str) -> bool:
    _user, _, password = value.partition(":")
    return _looks_like_password(password)


@dataclass(frozen=True)
class SecretPattern:
    kind: str
    regex: re.Pattern[str]
    score: float
    group: int = 0  # the span reported (0: the whole match)
    validate: Callable[[str], bool] | None = None  # called with the group's text
    # Lower-case literals of which every match holds one: where none occurs the regex is
    # not run (most text holds none, and a regex that starts with a look-behind is tried
    # at every position). Empty: always run.
    hints: tuple[str, ...] = ()

    def may_match(self, lowered: str) -> bool:
        """False when `lowered` (the text, lower-cased) cannot hold a match."""
        return not self.hints or any(h in lowered for h in self.hints)

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where in `text` this pattern finds a credential that passes its check."""
        for match in self.regex.finditer(text):
            if self.validate is None or self.validate(match.group(self.group)):
                yield match.span(self.group)


def _secret(
    kind: str,
    score: float,
    regex: str,
    flags: int = 0,
    *,
    group: int = 0,
    validate: Callable[[str], bool] | None = None,
    hints: tuple[str, ...] = (),
) -> SecretPattern:
    return SecretPattern(kind, re.compile(regex, flags), score, group, validate, hints)


# PEM/PGP private key blocks; an unterminated block runs to the end of the text.
_PRIVATE_KEY_BLOCK = (
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)"
)
# Anthropic (sk-ant-api03-...), OpenAI (sk-..., sk-proj-..., sk-svcacct-...). Real keys run
# 48 to 160 characters; 32 keeps hyphenated prose ("sk-...") out.
_SK_KEY = rf"(?<![\w-])sk-(?:ant-[a-z]+\d*-|proj-|svcacct-|admin-)?[{_B62}_\-]{{32,}}"
# AWS access key ids (long-term AKIA, temporary ASIA, and the rarer prefixes).
_AWS_KEY_ID = r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[A-Z0-9]{16}(?![A-Za-z0-9])"
# GitHub classic tokens.
_GITHUB_CLASSIC = r"(?<![\w-])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}(?![\w-])"
# JSON Web Tokens: base64url('{"...') twice, then an optional signature.
_JWT = r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
# Authorization headers: only the credential is reported.
_BEARER = r"\bBearer\s+([A-Za-z0-9\-._~+/]{16,}=*)"
_BASIC = r"\bAuthorization\s*[:=]\s*[\"']?Basic\s+([A-Za-z0-9+/]{8,}={0,2})"
# scheme://user:password@host — the user-info part is reported.
_URL_USERINFO = r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://([^\s:/?#@\[\]]+:[^\s/?#@]+)@[^\s/?#@]"
# password=..., passwd: ... (a short value is still a password).
_PW_ASSIGNED = r"\b(?:password|passwd|pwd|passphrase)[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{4,})"
# api_key=..., token: ..., client_secret = "...", AWS secret keys... with a long value.
_KEY_ASSIGNED = (
    r"\b(?:[a-z0-9]+[_\-.])*(?:api[_\-.]?key|apikey|access[_\-.]?key|secret[_\-.]?key"
    r"|secret|token|auth[_\-.]?key|private[_\-.]?key|client[_\-.]?secret|credentials?)"
    r"[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{12,})"
)

SECRET_PATTERNS: tuple[SecretPattern, ...] = (
    _secret("PRIVATE_KEY", 1.0, _PRIVATE_KEY_BLOCK, re.DOTALL, hints=("-----begin ",)),
    _secret("API_KEY", 0.95, _SK_KEY, hints=("sk-",)),
    _secret(
        "API_KEY", 0.95, r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}(?![\w-])", hints=("aiza",)
    ),  # Google
    _secret(
        "API_KEY",
        0.95,
        rf"(?<![\w-])(?:sk|rk)_(?:live|test)_[{_B62}]{{16,}}",
        hints=("sk_", "rk_"),
    ),  # Stripe
    _secret(
        "API_KEY", 0.9, r"(?<![\w-])hf_[A-Za-z0-9]{30,}(?![\w-])", hints=("hf_",)
    ),  # Hugging Face
    _secret("API_KEY", 0.95, r"(?<![\w-])glpat-[A-Za-z0-9_\-]{20,}", hints=("glpat-",)),  # GitLab
    _secret(
        "AWS_ACCESS_KEY",
        0.95,
        _AWS_KEY_ID,
        hints=("akia", "asia", "abia", "acca", "aida", "aroa"),
    ),
    _secret("GITHUB_TOKEN", 0.95, _GITHUB_CLASSIC, hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    _secret(
        "GITHUB_TOKEN", 0.95, r"(?<![\w-])github_pat_[A-Za-z0-9_]{22,}", hints=("github_pat_",)
    ),  # fine-grained
    # Slack bot/user/app/refresh tokens.
    _secret(
        "SLACK_TOKEN",
        0.95,
        r"(?<![\w-])(?:xox[baprse]|xapp)-[A-Za-z0-9-]{10,}",
        validate=_has_digit_and_letter,
        hints=("xox", "xapp-"),
    ),
    _secret("JWT", 1.0, _JWT, validate=_is_jwt, hints=("eyj",)),
    _secret(
        "BEARER_TOKEN",
        0.9,
        _BEARER,
        re.I,
        group=1,
        validate=_has_digit_and_letter,
        hints=("bearer",),
    ),
    _secret("BASIC_AUTH", 0.9, _BASIC, re.I, group=1, hints=("basic",)),
    _secret(
        "PASSWORD_IN_URL", 0.95, _URL_USERINFO, group=1, validate=_url_password, hints=("://",)
    ),
    _secret(
        "PASSWORD",
        0.8,
        _PW_ASSIGNED,
        re.I,
        group=1,
        validate=_looks_like_password,
        hints=("passw", "passp", "pwd"),
    ),
    _secret(
        "SECRET",
        0.8,
        _KEY_ASSIGNED,
        re.I,
        group=1,
        validate=_looks_like_secret_value,
        hints=("key", "secret", "token", "credential"),
    ),
)

SECRET_KINDS: frozenset[str] = frozenset(p.kind for p in SECRET_PATTERNS)
