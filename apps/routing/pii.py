"""Personal data in text: presidio-analyzer's pattern recognizers, tuned for prose, and a
cheap pre-check per kind (`candidates`) that says when a recognizer cannot find anything,
so it is not run. Credentials are our own patterns (apps/routing/secret_patterns.py),
run beside these by the scanner.

No NLP model: none can be downloaded here, so names and addresses in free prose are NOT
detected. presidio-analyzer imports spaCy, thinc, torch and transformers when its package
is imported (several seconds, once per process), so the engine is built lazily, once,
behind `analyze()`; call `warm_up()` at process start to pay that early. The scanner
(apps/routing/scan.py) is its only user.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from presidio_analyzer import AnalyzerEngine, RecognizerResult

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
PII_KINDS: frozenset[str] = frozenset(PII_THRESHOLDS)

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

_lock = threading.Lock()
_engine_instance: AnalyzerEngine | None = None


def _build_engine() -> AnalyzerEngine:
    # Heavy: presidio_analyzer imports spaCy, thinc and (when installed) torch/transformers.
    import tldextract  # heavy: reads its public suffix snapshot; only presidio's emails need it
    from presidio_analyzer import (  # heavy: see above
        AnalyzerEngine,
        EntityRecognizer,
        RecognizerRegistry,
    )
    from presidio_analyzer.nlp_engine import NoOpNlpEngine  # heavy: see above
    from presidio_analyzer.predefined_recognizers import (  # heavy: see above
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
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


# Per kind, a check that is true for every text in which its recognizer (as configured
# above, with presidio's case-insensitive flags) can find something: each is a looser
# form of the recognizer's own pattern. tests/security/test_egress_scan.py compares the
# scan with and without them.
_LOOSE: dict[str, Callable[[str], object]] = {
    "EMAIL_ADDRESS": lambda text: "@" in text,
    # 13 to 19 digits, single "-" or " " between groups.
    "CREDIT_CARD": re.compile(r"\d(?:[- ]?\d){12}").search,
    # Country, check digits, then at least two groups of four.
    "IBAN_CODE": re.compile(r"[a-z]{2}\d{2}(?:[ -]?[a-z0-9]{4}){2}", re.IGNORECASE).search,
    # A dotted quad, or two colons with at most four hex digits between (every IPv6 form
    # the address check keeps has at least two colons).
    "IP_ADDRESS": re.compile(
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d|:[0-9a-f]{0,4}:", re.IGNORECASE
    ).search,
    # Only the windows around long digit runs are ever searched (ProsePhoneRecognizer).
    "PHONE_NUMBER": lambda text: bool(_phone_windows(text)),
    # Nine digits with at most one separator between any two (every SSN pattern).
    "US_SSN": re.compile(r"\d(?:[- .]?\d){8}").search,
    "UK_NINO": re.compile(r"[a-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[a-d]", re.IGNORECASE).search,
    # "1…", "3…" or "bc1…" and at least 25 more letters or digits.
    "CRYPTO": re.compile(r"[13][a-z0-9]{25}", re.IGNORECASE).search,
}


def candidates(text: str, entities: list[str]) -> list[str]:
    """Those of `entities` that `text` may hold: a recognizer left out here would have
    found nothing."""
    return [e for e in entities if e not in _LOOSE or _LOOSE[e](text)]


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


def analyze(text: str, entities: list[str]) -> list[RecognizerResult]:
    """Every recognizer's results for `entities` in `text`, as presidio scores them."""
    return _engine().analyze(text=text, language="en", entities=entities)
