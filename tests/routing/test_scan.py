"""The PII/secret scanner: what it finds, what it leaves alone, and how it redacts."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.routing import pii as scanner
from apps.routing.scan import Finding, kinds, redact, scan

# Test values with valid checksums (public test numbers, not anyone's).
IBAN_DE = "DE89 3704 0044 0532 0130 00"
IBAN_GB = "GB82WEST12345698765432"
CARD_VISA = "4111 1111 1111 1111"
CARD_MC = "5555-5555-5555-4444"
CARD_AMEX = "378282246310005"
OPENAI_KEY = "sk-proj-4fTq9ZxW2bLm7RkP0sYvN3cHjD8aEuG1iKoQ5wXz6tBy"
ANTHROPIC_KEY = "sk-ant-api03-Zk3mQ9xW2bLm7RkP0sYvN3cHjD8aEuG1iKoQ5wXz6tBy_Hr4LpJ0nVc-AA"
AWS_KEY = "AKIAZ3QF7NXE4P2LKW9R"
GITHUB = "ghp_8fK2mQ9xW2bLm7RkP0sYvN3cHjD8aEuG1iKo"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789"
SLACK = "xoxb-2048371928-5127364059-Qk3mQ9xW2bLm7RkP0sYvN3cH"
GOOGLE = "AIzaSyD4fTq9ZxW2bLm7RkP0sYvN3cHjD8aEuG1"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUgRG9lIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6Z1gQn0Mzx3r4s0WQ8Lw9dM1K\n"
    "x4y0b0l5Zq7Rk3+pM2e8vN6qTc0bW1fY9wZx8Lk3Jm4Ns7Yv2Qp0Rt5Wu6Xa==\n"
    "-----END RSA PRIVATE KEY-----"
)

REALISTIC: list[tuple[str, str, str]] = [
    # (kind, sentence, the exact text that must be covered)
    (
        "EMAIL_ADDRESS",
        "Please forward the contract to jane.doe@acme-corp.com by Friday.",
        "jane.doe@acme-corp.com",
    ),
    (
        "EMAIL_ADDRESS",
        "Ask Priya (p.raman@hr.example.co.uk) about the onboarding.",
        "p.raman@hr.example.co.uk",
    ),
    (
        "EMAIL_ADDRESS",
        "Escalations go to oncall@payments.internal, not to the team list.",
        "oncall@payments.internal",
    ),
    ("IBAN_CODE", f"Refund the deposit to IBAN {IBAN_DE}, account holder M. Weber.", IBAN_DE),
    ("IBAN_CODE", f"Supplier bank details: {IBAN_GB} (Westminster branch).", IBAN_GB),
    ("CREDIT_CARD", f"The customer paid with card {CARD_VISA}, expiry 04/27.", CARD_VISA),
    ("CREDIT_CARD", f"Charge {CARD_MC} for the annual licence.", CARD_MC),
    ("CREDIT_CARD", f"Amex on file: {CARD_AMEX}.", CARD_AMEX),
    ("PHONE_NUMBER", "Call our Berlin office on +49 30 901820 before noon.", "+49 30 901820"),
    ("PHONE_NUMBER", "Her mobile is (415) 555-0132 if the meeting moves.", "(415) 555-0132"),
    ("PHONE_NUMBER", "The London desk answers on 020 7946 0958.", "020 7946 0958"),
    (
        "IP_ADDRESS",
        "The VPN gateway at 10.20.30.41 drops connections after midnight.",
        "10.20.30.41",
    ),
    (
        "IP_ADDRESS",
        "Block 2001:db8:85a3::8a2e:370:7334 on the edge firewall.",
        "2001:db8:85a3::8a2e:370:7334",
    ),
    ("US_SSN", "Employee SSN 536-22-8749 was entered twice in payroll.", "536-22-8749"),
    ("UK_NINO", "His National Insurance number is JG 10 37 59 A.", "JG 10 37 59 A"),
    ("API_KEY", f"Our OpenAI key {OPENAI_KEY} stopped working today.", OPENAI_KEY),
    ("API_KEY", f"export ANTHROPIC_API_KEY={ANTHROPIC_KEY}", ANTHROPIC_KEY),
    ("API_KEY", f"The maps widget uses {GOOGLE} in production.", GOOGLE),
    ("AWS_ACCESS_KEY", f"aws configure printed {AWS_KEY} as the access key id.", AWS_KEY),
    ("GITHUB_TOKEN", f"CI clones with {GITHUB} since Tuesday.", GITHUB),
    ("GITHUB_TOKEN", f"The fine-grained token {GITHUB_PAT} expires soon.", GITHUB_PAT),
    ("SLACK_TOKEN", f"The bot posts with {SLACK}.", SLACK),
    ("JWT", f"The session cookie held {JWT} when it failed.", JWT),
    ("PRIVATE_KEY", f"Here is the deploy key:\n{PEM}\nwhy does ssh refuse it?", PEM),
    (
        "BEARER_TOKEN",
        "curl -H 'Authorization: Bearer 9c1e7f2a4b8d6e3f0a5c7b9d' https://api.example.com",
        "9c1e7f2a4b8d6e3f0a5c7b9d",
    ),
    (
        "BASIC_AUTH",
        "Authorization: Basic YWRtaW46cGFzc3dvcmQxMjM= was in the log.",
        "YWRtaW46cGFzc3dvcmQxMjM=",
    ),
    (
        "PASSWORD_IN_URL",
        "DATABASE_URL=postgres://billing:Xk9$wL2q@db01.acme.com:5432/billing",
        "billing:Xk9$wL2q",
    ),
    (
        "PASSWORD_IN_URL",
        "Clone https://deploy:hunter2hunter2@git.example.org/acme/site.git",
        "deploy:hunter2hunter2",
    ),
    (
        "SECRET",
        'settings.py has STRIPE_WEBHOOK_SECRET = "whsec_3fT9qZ2xW7bLm4Rk" committed',
        "whsec_3fT9qZ2xW7bLm4Rk",
    ),
    ("SECRET", "config: api_key=9f8e7d6c5b4a39281726ab", "9f8e7d6c5b4a39281726ab"),
    ("SECRET", "access_token: 'ya29.A0ARrdaM-8xY2kQ'", "ya29.A0ARrdaM-8xY2kQ"),
    ("PASSWORD", "The wifi password: Tr0ub4dor&3 changes monthly.", "Tr0ub4dor&3"),
]


@pytest.mark.parametrize(
    ("kind", "sentence", "secret"),
    REALISTIC,
    ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(REALISTIC)],
)
def test_each_kind_is_found_in_a_realistic_sentence(kind, sentence, secret):
    findings = scan(sentence)
    start = sentence.index(secret)
    end = start + len(secret)
    covering = [f for f in findings if f.start <= start and f.end >= end]
    assert covering, f"{secret!r} not covered by {findings}"
    assert covering[0].kind == kind
    redacted = redact(sentence, findings)
    assert secret not in redacted
    assert f"[REDACTED:{kind}]" in redacted


HANDBOOK = """\
Welcome to Northwind Logistics. This handbook (version 4.2, last revised 12 March 2024)
describes how we work. It applies to all 1,250 employees in our 14 offices, from Rotterdam
to Denver, and replaces the 2019 edition. Section 3.2.1 covers travel; section 5 covers leave.

Working hours. Our core hours are 10:00 to 15:30, Monday to Friday. Most teams start between
08:00 and 09:30. Night-shift staff at the distribution centres work 22:00-06:00 and receive a
supplement of 25% on their base rate. Overtime beyond 48 hours per week needs written approval
from your manager and from People Operations, and is paid at 1.5x for the first 10 hours.

Expenses. Submit claims within 30 days through the finance portal at
https://intranet.northwind.example/finance/claims. Meals are reimbursed up to EUR 45.00 per
day (USD 50 in the Denver office); hotel stays up to EUR 160 per night, or EUR 210 in London,
Paris and Zurich. Keep receipts for seven years: tax audits in 2021 and 2023 asked for them.
Purchase orders above 2,500 need a PO number (format PO-2024-00123) before the invoice arrives.

Leave. Full-time staff receive 26 days of annual leave plus public holidays; part-time staff
receive a pro-rata share (for example 15.6 days at 0.6 FTE). Parental leave is 16 weeks at full
pay. Sick leave is reported before 09:00 on the first day; after 3 days we ask for a note.

Security. Lock your screen when you leave your desk. Use the password manager for every
account and never reuse a password; rotate shared credentials every 90 days. Laptops run the
managed image 2024.3, firmware 1.12.4.7, and the VPN client 7.4.1. Report phishing to the
security team within one hour; our ISO 27001 certificate (No. 231-7788) depends on it. Tokens
for hardware keys are issued by IT in room 4.17 on the fourth floor.

Facilities. The canteen serves lunch from 11:45 to 14:15. Building access badges cost 15 to
replace. Car park spaces 101-148 are reserved for car-sharing. Ext. 4412 reaches reception;
the emergency assembly point is car park B. Fire drills happen twice a year, in April and
October, and last about 20 minutes. The shuttle leaves at 07:40, 08:10 and 08:40.

Performance. Reviews happen every six months, in January and July. Ratings use a 1-5 scale;
about 70% of colleagues score 3 or 4. Salary bands are published on the intranet and updated
each April by 2.0 to 3.5 percent, depending on inflation. Bonus pools are 8% of base salary.
"""


def test_no_finding_in_ordinary_business_prose():
    findings = scan(HANDBOOK)
    assert findings == [], [(f.kind, HANDBOOK[f.start : f.end]) for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "We upgraded from version 1.2.3.4 to 1.2.3.5 last week.",
        "Install v10.0.0.1 of the agent, see section 2.1.4.3.",
        "The order number is 123456 and the room is 4.17.",
        "Call extension 4412 or dial 0 for reception.",
        "The bearer of this letter is authorised to collect the parcel.",
        "Our token: appreciation for all your hard work this quarter.",
        "The server listens on 127.0.0.1 and 0.0.0.0 in development.",
        "Your password must be at least 12 characters long.",
        "Use the key from the vault, not the one in the wiki.",
        "The risk-assessment-for-the-supply-chain-project is due.",
        "Firmware 2.0.1.7, 2.0.1.8 and 2.0.1.9 fix the boot loop.",
    ],
)
def test_no_silly_false_positives(text):
    findings = scan(text)
    assert findings == [], [(f.kind, text[f.start : f.end]) for f in findings]


def test_redaction_replaces_exactly_the_spans():
    text = f"Mail jane@example.com, key {AWS_KEY}, done."
    findings = scan(text)
    assert [f.kind for f in findings] == ["EMAIL_ADDRESS", "AWS_ACCESS_KEY"]
    assert redact(text, findings) == (
        "Mail [REDACTED:EMAIL_ADDRESS], key [REDACTED:AWS_ACCESS_KEY], done."
    )


def test_redact_is_exact_on_handmade_findings_and_merges_overlaps():
    text = "abcdefghij"
    assert redact(text, [Finding("X", 2, 4, 1.0)]) == "ab[REDACTED:X]efghij"
    assert redact(text, [Finding("X", 0, 10, 1.0)]) == "[REDACTED:X]"
    # Out of order and overlapping: one redaction covering both.
    assert redact(text, [Finding("B", 5, 8, 0.5), Finding("A", 3, 6, 0.9)]) == "abc[REDACTED:A]ij"
    assert redact(text, []) == text
    with pytest.raises(ValueError):
        redact(text, [Finding("X", 5, 11, 1.0)])


def test_findings_are_sorted_and_never_overlap():
    text = f"Authorization: Bearer {JWT} and postgres://app:S3cretPass@db.acme.com/x and {IBAN_DE}"
    findings = scan(text)
    assert findings == sorted(findings, key=lambda f: f.start)
    for a, b in zip(findings, findings[1:], strict=False):
        assert a.end <= b.start
    # Overlaps resolve to the more specific kind.
    assert kinds(findings) == ["IBAN_CODE", "JWT", "PASSWORD_IN_URL"]


def test_kinds_are_sorted_unique_and_never_contain_the_secret():
    text = f"{OPENAI_KEY} {OPENAI_KEY} jane@example.com {AWS_KEY}"
    findings = scan(text)
    result = kinds(findings)
    assert result == ["API_KEY", "AWS_ACCESS_KEY", "EMAIL_ADDRESS"]
    joined = " ".join(result)
    for secret in (OPENAI_KEY, AWS_KEY, "jane@example.com", "jane"):
        assert secret not in joined


def test_unterminated_private_key_is_redacted_to_the_end():
    text = "start\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA"
    findings = scan(text)
    assert [f.kind for f in findings] == ["PRIVATE_KEY"]
    assert redact(text, findings) == "start\n[REDACTED:PRIVATE_KEY]"


def test_email_followed_by_a_missing_space_is_still_found():
    text = "Write to jane@example.com.Thanks for your help."
    assert kinds(scan(text)) == ["EMAIL_ADDRESS"]


def test_ip_after_a_version_string_is_still_an_address_when_apart():
    text = "After upgrading to version 1.2.3.4 the host 10.1.2.3 stopped answering pings."
    found = [(f.kind, text[f.start : f.end]) for f in scan(text)]
    assert found == [("IP_ADDRESS", "10.1.2.3")]


def test_phone_number_run_into_a_year_is_still_found():
    text = "Ring +1 415 555 0132 2024 was the year we moved."
    found = [(f.kind, text[f.start : f.end]) for f in scan(text)]
    assert found == [("PHONE_NUMBER", "+1 415 555 0132")]


def test_invalid_checksums_are_not_reported():
    assert scan("IBAN DE89 3704 0044 0532 0130 01 is mistyped.") == []
    assert scan("Card 4111 1111 1111 1112 was declined.") == []


def test_empty_text_and_wrong_type():
    assert scan("") == []
    with pytest.raises(TypeError):
        scan(b"jane@example.com")  # type: ignore[arg-type]


def test_internal_errors_propagate_and_are_not_kept(monkeypatch):
    # A broken recognizer must surface as an exception: the gate reads it as "deny". The
    # scanner keeps results per text, never an error: the same text scans once fixed.
    engine = scanner._engine()
    recognizer = next(
        r for r in engine.registry.recognizers if "EMAIL_ADDRESS" in r.supported_entities
    )
    # A fresh address each run, in letters only: a run of digits (an object id) can pass
    # the Luhn check and read as a card number as well.
    fresh = "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])
    text = f"Write to crash-{fresh}@example.com today."

    def broken(*args, **kwargs):
        raise RuntimeError("recognizer crashed")

    monkeypatch.setattr(recognizer, "analyze", broken)
    with pytest.raises(RuntimeError, match="recognizer crashed"):
        scan(text)
    monkeypatch.undo()
    assert kinds(scan(text)) == ["EMAIL_ADDRESS"]


def test_module_import_does_not_import_presidio():
    code = (
        "import sys; import apps.routing.scan; "
        "bad = [m for m in ('presidio_analyzer', 'spacy', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_concurrent_scans_agree():
    text = f"{HANDBOOK}\nSend it to jane@example.com with key {OPENAI_KEY}."
    expected = scan(text)
    results: list[list[Finding]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                results.append(scan(text))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 20
    assert all(r == expected for r in results)


def test_phone_prefilter_finds_what_the_full_matcher_finds():
    # The scanner runs libphonenumber only around long digit runs; over a text full of
    # numbers that must give the same phone numbers as running it over the whole text.
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    text = "\n".join(
        [HANDBOOK]
        + [f"Call {p} or write; ref {i}-{i * 7} on 2024-03-{i:02d}." for i, p in enumerate(PHONES)]
        + [sentence for _, sentence, _ in REALISTIC]
    )
    full = {
        (r.start, r.end)
        for r in PhoneRecognizer().analyze(text, ["PHONE_NUMBER"])
        if sum(c.isdigit() for c in text[r.start : r.end]) >= scanner._PHONE_MIN_DIGITS
    }
    found = {(f.start, f.end) for f in scan(text) if f.kind == "PHONE_NUMBER"}
    assert full  # the corpus does contain phone numbers
    assert found == full


# --- property: an inserted identifier is always found ---------------------------------------

WORDS = (
    "the quarterly report shows revenue growth in the northern region and our team will "
    "review the budget before the meeting on Monday please send comments to finance about "
    "invoices contracts suppliers logistics warehouse shipment delayed approved policy "
    "handbook leave travel training 2024 12 3.5 45% EUR 160 Q3 of for with by from"
).split()

B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


@st.composite
def ibans(draw) -> str:
    if draw(st.booleans()):
        iban = _iban("DE", draw(st.text("0123456789", min_size=18, max_size=18)))
    else:
        bank = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4))
        iban = _iban("GB", bank + draw(st.text("0123456789", min_size=14, max_size=14)))
    if draw(st.booleans()):
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


@st.composite
def emails(draw) -> str:
    local = draw(st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z0-9]{1,8})?", fullmatch=True))
    domain = draw(
        st.sampled_from(["example.com", "acme.co.uk", "corp.internal", "mail.example.org", "x.de"])
    )
    return f"{local}@{domain}"


@st.composite
def api_keys(draw) -> tuple[str, str]:
    def rand(n: int, alphabet: str = B62) -> str:
        return draw(st.text(alphabet, min_size=n, max_size=n))

    choice = draw(st.integers(0, 5))
    if choice == 0:
        return "API_KEY", "sk-proj-" + rand(48, B62 + "_-")
    if choice == 1:
        return "API_KEY", "sk-ant-api03-" + rand(95, B62 + "_-")
    if choice == 2:
        return "API_KEY", "sk-" + rand(48)
    if choice == 3:
        return "API_KEY", "AIza" + rand(35, B62 + "_-")
    if choice == 4:
        return "AWS_ACCESS_KEY", "AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    return "GITHUB_TOKEN", "ghp_" + rand(36)


PHONES = [
    "+49 30 901820",
    "+1 415 555 0132",
    "(415) 555-0132",
    "020 7946 0958",
    "+44 20 7946 0958",
    "+33 1 42 68 53 00",
    "+972 3 123 4567",
    "+91 98765 43210",
]


@st.composite
def identifiers(draw) -> tuple[str, str]:
    which = draw(st.integers(0, 3))
    if which == 0:
        return "EMAIL_ADDRESS", draw(emails())
    if which == 1:
        return "IBAN_CODE", draw(ibans())
    if which == 2:
        return "PHONE_NUMBER", draw(st.sampled_from(PHONES))
    return draw(api_keys())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(st.sampled_from(WORDS), max_size=40),
    after=st.lists(st.sampled_from(WORDS), max_size=40),
    item=identifiers(),
    left=st.sampled_from([" ", "(", '"', "'", ": ", "\n", "<", " is "]),
    right=st.sampled_from([" ", ".", ",", ")", '"', "'", "\n", ";", ">", ". "]),
)
def test_inserted_identifier_is_always_found(before, after, item, left, right):
    kind, value = item
    head = " ".join(before) + left
    text = head + value + right + " " + " ".join(after)
    start, end = len(head), len(head) + len(value)
    findings = scan(text)
    covering = [f for f in findings if f.start <= start and f.end >= end]
    assert covering, (value, [(f.kind, text[f.start : f.end]) for f in findings])
    assert covering[0].kind == kind
    assert value not in redact(text, findings)
