"""The PII/secret scanner: the only one in the product.

`scan(text)` finds personal data and credentials in text that might leave the premises;
`redact` replaces what it found; `kinds` names what was found for reasons and the audit,
never the matched text.

Personal data comes from presidio-analyzer's pattern recognizers (no NLP model: none can
be downloaded here, so names and addresses in free prose are NOT detected). Credentials
come from our own patterns below. presidio-analyzer imports spaCy, thinc, torch and
transformers when its package is imported (several seconds, once per process), so it is
loaded lazily behind `_engine()`; call `warm_up()` at process start to pay that early.

Errors are never swallowed: the egress gate treats an exception as "deny".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from presidio_analyzer import AnalyzerEngine


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    score: float


# --- personal data (presidio) --------------------------------------------------------------

# Minimum score per presidio entity. Without an NLP model presidio cannot raise a score
# from context words ("phone", "ssn"), so these are the recognizers' base scores.
PII_THRESHOLDS: dict[str, float] = {
    "EMAIL_ADDRESS": 0.5,
    "CREDIT_CARD": 0.3,  # validated by Luhn
    "IBAN_CODE": 0.5,  # validated by the mod-97 checksum and country length
    "IP_ADDRESS": 0.5,
    "PHONE_NUMBER": 0.4,  # validated by libphonenumber
    "US_SSN": 0.5,  # only the separated form (123-45-6789); 9 bare digits score 0.05
    "UK_NINO": 0.5,
    "CRYPTO": 0.5,  # bitcoin address, validated by its checksum
}

# Internal domains that the public suffix list does not know but that are still addresses.
_INTERNAL_TLDS = frozenset({"local", "internal", "corp", "lan", "intranet", "localdomain", "home"})

# "version 1.2.3.4", "v10.0.0.1", "release 2.0.0.1": dotted quads that are not addresses.
_VERSION_BEFORE = re.compile(
    r"(?:\b(?:version|ver|release|build|rev|revision|firmware|section|clause|chapter|step|v)"
    r"\.?\s*|\bv|§\s*)$",
    re.IGNORECASE,
)

# What may stand between two version strings: "1.2.3.4 to 1.2.3.5", "1.2.3.4, 1.2.3.5".
_VERSION_JOIN = re.compile(
    r"\s*(?:,|to|and|or|from|then|vs\.?|->|→|–|-|/)?\s*(?:v|version\s*)?\Z", re.IGNORECASE
)

# A phone number must have at least this many digits; libphonenumber accepts some shorter
# national numbers that in prose are almost always something else (order ids, amounts).
_PHONE_MIN_DIGITS = 8
# Digits with the separators phone numbers are written with: "+49 (30) 901-820", "020 7946 0958".
_PHONE_CANDIDATE = re.compile(r"[+(]?\d(?:[\d \t().\-/]|\u00a0)*\d")
_PHONE_CONTEXT = 24


# --- credentials (ours) --------------------------------------------------------------------

_B62 = r"A-Za-z0-9"


def _has_digit_and_letter(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _looks_like_secret_value(value: str) -> bool:
    """A value assigned to `token=`/`secret:`: long, not a placeholder, not a plain word."""
    if len(value) < 12:
        return False
    if value.startswith(("$", "<", "{", "%")) or set(value) <= set("*xX._-"):
        return False  # ${ENV}, <your-key>, {{ var }}, %s, *****
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
    if len(value) < 4:
        return False
    if value.startswith(("$", "<", "{", "%")) or set(value) <= set("*xX._-"):
        return False
    return True


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
class _SecretPattern:
    kind: str
    regex: re.Pattern[str]
    score: float
    group: int = 0  # the span reported (0: the whole match)
    validate: Callable[[str], bool] | None = None  # called with the group's text


def _p(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


SECRET_PATTERNS: tuple[_SecretPattern, ...] = (
    # PEM/PGP private key blocks; an unterminated block runs to the end of the text.
    _SecretPattern(
        "PRIVATE_KEY",
        _p(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
            re.DOTALL,
        ),
        1.0,
    ),
    # Anthropic (sk-ant-api03-...), OpenAI (sk-..., sk-proj-..., sk-svcacct-...).
    _SecretPattern(
        "API_KEY",
        # Real keys run 48 to 160 characters; 32 keeps hyphenated prose ("sk-...") out.
        _p(rf"(?<![\w-])sk-(?:ant-[a-z]+\d*-|proj-|svcacct-|admin-)?[{_B62}_\-]{{32,}}"),
        0.95,
    ),
    # Google API keys.
    _SecretPattern("API_KEY", _p(r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}(?![\w-])"), 0.95),
    # Stripe secret/restricted keys, Hugging Face and GitLab tokens.
    _SecretPattern("API_KEY", _p(rf"(?<![\w-])(?:sk|rk)_(?:live|test)_[{_B62}]{{16,}}"), 0.95),
    _SecretPattern("API_KEY", _p(r"(?<![\w-])hf_[A-Za-z0-9]{30,}(?![\w-])"), 0.9),
    _SecretPattern("API_KEY", _p(r"(?<![\w-])glpat-[A-Za-z0-9_\-]{20,}"), 0.95),
    # AWS access key ids (long-term AKIA, temporary ASIA, and the rarer prefixes).
    _SecretPattern(
        "AWS_ACCESS_KEY",
        _p(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
        0.95,
    ),
    # GitHub: classic tokens and fine-grained personal access tokens.
    _SecretPattern(
        "GITHUB_TOKEN", _p(r"(?<![\w-])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}(?![\w-])"), 0.95
    ),
    _SecretPattern("GITHUB_TOKEN", _p(r"(?<![\w-])github_pat_[A-Za-z0-9_]{22,}"), 0.95),
    # Slack bot/user/app/refresh tokens.
    _SecretPattern(
        "SLACK_TOKEN",
        _p(r"(?<![\w-])(?:xox[baprse]|xapp)-[A-Za-z0-9-]{10,}"),
        0.95,
        validate=_has_digit_and_letter,
    ),
    # JSON Web Tokens: base64url('{"...') twice, then an optional signature.
    _SecretPattern(
        "JWT",
        _p(r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
        1.0,
        validate=_is_jwt,
    ),
    # Authorization headers: only the credential is reported.
    _SecretPattern(
        "BEARER_TOKEN",
        _p(r"\bBearer\s+([A-Za-z0-9\-._~+/]{16,}=*)", re.IGNORECASE),
        0.9,
        group=1,
        validate=_has_digit_and_letter,
    ),
    _SecretPattern(
        "BASIC_AUTH",
        _p(r"\bAuthorization\s*[:=]\s*[\"']?Basic\s+([A-Za-z0-9+/]{8,}={0,2})", re.IGNORECASE),
        0.9,
        group=1,
    ),
    # scheme://user:password@host — the user-info part is reported.
    _SecretPattern(
        "PASSWORD_IN_URL",
        _p(r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://([^\s:/?#@\[\]]+:[^\s/?#@]+)@[^\s/?#@]"),
        0.95,
        group=1,
        validate=_url_password,
    ),
    # password=..., passwd: ... (a short value is still a password).
    _SecretPattern(
        "PASSWORD",
        _p(
            r"\b(?:password|passwd|pwd|passphrase)[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{4,})",
            re.IGNORECASE,
        ),
        0.8,
        group=1,
        validate=_looks_like_password,
    ),
    # api_key=..., token: ..., client_secret = "...", AWS secret keys... with a long value.
    _SecretPattern(
        "SECRET",
        _p(
            r"\b(?:[a-z0-9]+[_\-.])*(?:api[_\-.]?key|apikey|access[_\-.]?key|secret[_\-.]?key"
            r"|secret|token|auth[_\-.]?key|private[_\-.]?key|client[_\-.]?secret|credentials?)"
            r"[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{12,})",
            re.IGNORECASE,
        ),
        0.8,
        group=1,
        validate=_looks_like_secret_value,
    ),
)

SECRET_KINDS: frozenset[str] = frozenset(p.kind for p in SECRET_PATTERNS)
PII_KINDS: frozenset[str] = frozenset(PII_THRESHOLDS)
ALL_KINDS: frozenset[str] = SECRET_KINDS | PII_KINDS

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


# --- the engine ----------------------------------------------------------------------------

_lock = threading.Lock()
_engine_instance: AnalyzerEngine | None = None


def _build_engine() -> AnalyzerEngine:
    # Heavy: presidio_analyzer imports spaCy, thinc and (when installed) torch/transformers.
    import tldextract
    from presidio_analyzer import (
        AnalyzerEngine,
        EntityRecognizer,
        LocalRecognizer,
        RecognizerRegistry,
    )
    from presidio_analyzer import RecognizerResult as Result
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UkNinoRecognizer,
        UsSsnRecognizer,
    )

    # tldextract's default fetches the public suffix list from the internet on first use
    # (and waits for it); the snapshot inside the wheel is enough to tell a domain.
    offline_tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            # "jane@example.com.Thanks" (a missing space) is still jane's address: accept
            # when any leading run of the domain's labels is a real or internal domain.
            labels = pattern_text.rpartition("@")[2].lower().split(".")
            for n in range(len(labels), 1, -1):
                if labels[n - 1] in _INTERNAL_TLDS:
                    return True
                if offline_tld(".".join(labels[:n])).fqdn != "":
                    return True
            return False

    class ProseIpRecognizer(IpRecognizer):
        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # noqa: ANN001
            results = super().analyze(text, entities, nlp_artifacts, regex_flags)
            kept = []
            version_end = -1  # end of the last dotted quad judged a version string
            for r in sorted(results, key=lambda r: r.start):
                if version_end >= 0 and _VERSION_JOIN.match(text[version_end : r.start]):
                    version_end = r.end  # "from version 1.2.3.4 to 1.2.3.5"
                elif _ip_in_prose_is_address(text, r.start, r.end):
                    kept.append(r)
                elif "." in text[r.start : r.end]:
                    version_end = r.end
            return kept

    class ProsePhoneRecognizer(PhoneRecognizer):
        def analyze(self, text, entities, nlp_artifacts=None):  # noqa: ANN001
            # libphonenumber's matcher, once per region, is most of the scan's cost; run it
            # only around runs of digits long enough to be a phone number.
            results = []
            for lo, hi, runs in _phone_windows(text):
                found = self._in(text, lo, hi, entities, nlp_artifacts)
                if not found:
                    # "+1 415 555 0132 2024": a number run into a neighbouring one reads as
                    # one invalid number. Retry without a few groups at either end.
                    for a, b in _phone_trims(text, runs):
                        found += self._in(text, a, b, entities, nlp_artifacts, context=False)
                results += found
            return EntityRecognizer.remove_duplicates(results)

        def _in(self, text, lo, hi, entities, nlp_artifacts, context=True):  # noqa: ANN001
            out = []
            if not context:  # the trimmed digits must not be read back in
                window = " " + text[lo:hi] + " "
                lo -= 1
            else:
                window = text[lo:hi]
            for r in super().analyze(window, entities, nlp_artifacts):
                r.start += lo
                r.end += lo
                if sum(c.isdigit() for c in text[r.start : r.end]) >= _PHONE_MIN_DIGITS:
                    out.append(r)
            return out

    class SecretRecognizer(LocalRecognizer):
        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):  # noqa: ANN001
            out = []
            for pat in SECRET_PATTERNS:
                if pat.kind not in entities:
                    continue
                for m in pat.regex.finditer(text):
                    value = m.group(pat.group)
                    if pat.validate is not None and not pat.validate(value):
                        continue
                    start, end = m.span(pat.group)
                    out.append(Result(pat.kind, start, end, pat.score))
            return out

    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        OfflineEmailRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        ProseIpRecognizer(),
        ProsePhoneRecognizer(),
        UsSsnRecognizer(),
        UkNinoRecognizer(),
        CryptoRecognizer(),
        SecretRecognizer(supported_entities=sorted(SECRET_KINDS), name="EnclaveSecrets"),
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


def _phone_windows(text: str) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Spans of `text` that could hold a phone number, with a little context either side
    (libphonenumber looks at the neighbouring characters), overlapping spans joined; each
    with the digit runs inside it."""
    windows: list[tuple[int, int, list[tuple[int, int]]]] = []
    for m in _PHONE_CANDIDATE.finditer(text):
        if sum(c.isdigit() for c in m.group()) < _PHONE_MIN_DIGITS:
            continue
        lo, hi = max(0, m.start() - _PHONE_CONTEXT), min(len(text), m.end() + _PHONE_CONTEXT)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi, [*windows[-1][2], m.span()])
        else:
            windows.append((lo, hi, [m.span()]))
    return windows


def _phone_trims(text: str, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sub-spans of each digit run with up to two whitespace-separated groups dropped
    from either end, keeping enough digits to be a phone number."""
    spans = []
    for start, end in runs:
        groups = [
            (start + g.start(), start + g.end()) for g in re.finditer(r"\S+", text[start:end])
        ]
        n = len(groups)
        for drop_left in range(0, min(2, n - 1) + 1):
            for drop_right in range(0, min(2, n - 1 - drop_left) + 1):
                if drop_left == drop_right == 0:
                    continue
                a, b = groups[drop_left][0], groups[n - 1 - drop_right][1]
                if sum(c.isdigit() for c in text[a:b]) >= _PHONE_MIN_DIGITS:
                    spans.append((a, b))
    return spans


def _ip_in_prose_is_address(text: str, start: int, end: int) -> bool:
    import ipaddress

    candidate = text[start:end]
    try:
        ip = ipaddress.ip_interface(candidate).ip
    except ValueError:
        return False
    # 0.0.0.0, ::, 127.0.0.1, ::1 say nothing about anyone's network.
    if ip.is_unspecified or ip.is_loopback:
        return False
    if ip.version == 6:
        # "::" alone and short hex words around colons are not worth a finding.
        return sum(c.isdigit() for c in candidate) >= 1 and candidate.count(":") >= 2
    # A dotted quad after "version"/"v" or inside a longer dotted run is a version string.
    if _VERSION_BEFORE.search(text[max(0, start - 12) : start]):
        return False
    before = text[start - 1] if start > 0 else ""
    after = text[end : end + 2]
    if before == "." or (after[:1] == "." and after[1:2].isdigit()):
        return False
    return True


def _engine() -> AnalyzerEngine:
    global _engine_instance
    engine = _engine_instance
    if engine is None:
        with _lock:
            if _engine_instance is None:
                _engine_instance = _build_engine()
            engine = _engine_instance
    return engine


def warm_up() -> None:
    """Load presidio now (seconds) rather than on the first question."""
    _engine()


# --- public interface ----------------------------------------------------------------------

_ENTITIES = sorted(ALL_KINDS)


def scan(text: str) -> list[Finding]:
    """Every piece of personal data or credential in `text`, sorted by start, overlaps merged.

    Raises on any internal error (the egress gate reads an exception as "deny")."""
    if not isinstance(text, str):
        raise TypeError(f"scan() needs str, got {type(text).__name__}")
    if not text:
        return []
    results = _engine().analyze(text=text, language="en", entities=_ENTITIES)
    raw: list[Finding] = []
    for r in results:
        threshold = PII_THRESHOLDS.get(r.entity_type, 0.0)
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
