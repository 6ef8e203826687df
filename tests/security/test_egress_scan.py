"""Attack: personal data and secrets inside a *public* document's passage, title or section
name ride out to the external model with it (issue 15, item 4).

The gate now scans every part of the messages as they would be sent. In redact mode the
findings are blanked in every part and the rest is sent; in block mode the question stays
local, the reason naming the part. The recording stand-in shows what actually left, and
the `routing.decision` audit event lists the finding kinds per part.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apps.assistant.models import Message
from apps.audit.models import AuditEvent
from apps.core.roles import EMPLOYEE
from apps.routing import gate, pii, scan
from apps.routing import services as routing
from apps.routing.providers import external_provider
from apps.routing.secret_patterns import SECRET_PATTERNS
from tests.routing.test_scan import HANDBOOK, IBAN_DE, OPENAI_KEY, REALISTIC
from tests.support.egress import answered, decision_event, escalate, labelled_document
from tests.support.fake_provider import FakeProvider, use_as_provider

pytestmark = pytest.mark.django_db

EMAIL = "dana.whitfield@northwind-partners.com"
COMPANY = "Project Kestrel"
TITLE_EMAIL = "ops-desk@northwind-partners.com"
PUBLIC_FAQ = (
    f"The public beta opens on 3 March. Questions go to {EMAIL}. Refunds of the beta fee are "
    f"paid to {IBAN_DE}. The status page client uses the key {OPENAI_KEY}. The beta is run "
    f"by {COMPANY} in Rotterdam."
)
LEAKS = [EMAIL, IBAN_DE, OPENAI_KEY, COMPANY, TITLE_EMAIL, "northwind-partners.com"]


@pytest.fixture
def stand_in(settings):
    with FakeProvider(reply="The beta opens on 3 March [1].") as fake:
        use_as_provider(settings, fake, name="fakeai")
        settings.EGRESS_BLOCK_PATTERNS = [r"\bproject\s+kestrel\b"]
        yield fake


@pytest.fixture
def asker(stand_in) -> User:
    escalators = Group.objects.create(name="Escalators")
    routing.provider_access_set(
        actor=None, provider="fakeai", groups=[escalators], daily_token_budget=0,
        daily_cost_budget=Decimal("0"),
    )  # fmt: skip
    user = User.objects.create_user("ines", password="pw-ines-12345")
    user.groups.add(Group.objects.get(name=EMPLOYEE), escalators)
    return user


def _faq_answer(user: User) -> Message:
    doc = labelled_document("public", PUBLIC_FAQ, title=f"Beta FAQ ({TITLE_EMAIL})")
    return answered(user, [doc], question="When does the beta open?", section=f"{COMPANY} FAQ")


def test_a_public_passage_is_sent_with_its_personal_data_and_secrets_redacted(
    client, stand_in, asker
):
    routing.policy_update(
        actor=None, escalation_enabled=True, non_sensitive_labels=["public"], pii_mode="redact"
    )
    answer = _faq_answer(asker)
    done = escalate(client, asker, answer)
    assert done["status"] == "complete", done
    assert len(stand_in.requests) == 1
    sent = stand_in.bodies_text()
    for leak in LEAKS:
        assert leak.lower() not in sent.lower(), leak
    body = json.loads(sent)
    user_turn = body["messages"][-1]["content"]
    assert "The public beta opens on 3 March." in user_turn  # the rest of the passage went
    for marker in ("EMAIL_ADDRESS", "IBAN_CODE", "API_KEY", "COMPANY_PATTERN"):
        assert f"[REDACTED:{marker}]" in user_turn
    details = decision_event(answer).details
    assert details["outcome"] == "allow"
    assert details["redacted_by_part"] == {
        "passage 1": ["API_KEY", "COMPANY_PATTERN", "EMAIL_ADDRESS", "IBAN_CODE"],
        "passage 1 title": ["EMAIL_ADDRESS"],
        "passage 1 section": ["COMPANY_PATTERN"],
    }
    assert details["redactions"] == ["API_KEY", "COMPANY_PATTERN", "EMAIL_ADDRESS", "IBAN_CODE"]
    assert details["findings_by_part"] == {}  # nothing left after redaction
    # Kinds only, never the matched text, in the audit trail.
    for leak in LEAKS:
        assert leak.lower() not in json.dumps(details).lower()


def test_in_block_mode_the_same_passage_stays_local_naming_each_part(client, stand_in, asker):
    routing.policy_update(actor=None, escalation_enabled=True, non_sensitive_labels=["public"])
    answer = _faq_answer(asker)
    done = escalate(client, asker, answer)
    assert done["status"] == "kept_local"
    assert stand_in.requests == []
    details = decision_event(answer).details
    assert details["outcome"] == "deny"
    assert details["findings_by_part"] == {
        "passage 1 title": ["EMAIL_ADDRESS"],
        "passage 1 section": ["COMPANY_PATTERN"],
        "passage 1": ["API_KEY", "COMPANY_PATTERN", "EMAIL_ADDRESS", "IBAN_CODE"],
    }
    text = Message.objects.get(pk=done["message_id"]).content
    assert "The title of passage 1 contains what looks like email address" in text
    assert "the section name of passage 1 contains what looks like company pattern" in text
    assert "passage 1 contains what looks like api key, company pattern, email address" in text
    assert not AuditEvent.objects.filter(action="llm.call", left_premises=True).exists()


def test_each_part_of_the_payload_is_named_where_its_finding_is(stand_in, asker):
    """Question, an earlier turn, and two passages: every finding lands in its own part."""
    history = [
        {"role": "user", "content": "Who runs the beta?"},
        {"role": "assistant", "content": "Call +49 30 901820 and ask for the beta desk."},
    ]
    passages = [
        {"n": 1, "chunk_id": "a", "document_id": 1, "title": "Launch", "section": "Dates",
         "text": "The beta opens on 3 March.", "page": 2},
        {"n": 2, "chunk_id": "b", "document_id": 2, "title": f"Contacts {TITLE_EMAIL}",
         "section": "", "text": f"Refunds go to {IBAN_DE}.", "page": None},
    ]  # fmt: skip
    request = gate.prepare(
        question=f"Is {COMPANY} late?", passages=passages, history=history,
        policy=gate.current_policy(), provider=external_provider(),
    )  # fmt: skip
    decision = gate.decide(
        user=asker, conversation=answered(asker, [], question="x").conversation,
        request=request, provider=external_provider(),
    )  # fmt: skip
    assert decision.findings_by_part == {
        "history 2": ["PHONE_NUMBER"],
        "passage 2 title": ["EMAIL_ADDRESS"],
        "passage 2": ["IBAN_CODE"],
        "question": ["COMPANY_PATTERN"],
    }
    assert not decision.allowed


@pytest.mark.parametrize("sentence", [s for _, s, _ in REALISTIC])
def test_redacted_text_scanned_again_is_clean(sentence):
    # Redact mode sends what the decision finds clean: "api_key=[REDACTED:API_KEY]" is a
    # placeholder, not a new secret (else every redacted key would block).
    redacted = scan.redact(sentence, scan.scan(sentence))
    assert scan.scan(redacted) == [], redacted


# --- the scan's shortcuts never lose a finding ------------------------------------------


def _reference(text: str) -> list[scan.Finding]:
    """The scan without its shortcuts: every pattern and recognizer over the whole text.
    By design a phone number is looked for only outside what was already found (the
    digits of an IBAN or a card are not a phone number too), so such overlaps are left
    out here as well."""
    raw = [scan.Finding(p.kind, s, e, p.score) for p in SECRET_PATTERNS for s, e in p.spans(text)]
    phones = []
    for r in pii.analyze(text, sorted(pii.PII_KINDS)):
        if r.score >= pii.PII_THRESHOLDS[r.entity_type]:
            found = scan.Finding(r.entity_type, r.start, r.end, float(r.score))
            (phones if r.entity_type == "PHONE_NUMBER" else raw).append(found)
    raw += [p for p in phones if not any(p.start < f.end and f.start < p.end for f in raw)]
    return scan._merge(raw)


def _same_findings(text: str) -> None:
    fast, full = scan.scan(text), _reference(text)
    assert set(scan.kinds(full)) <= set(scan.kinds(fast)), (text, fast, full)
    covered = {i for f in fast for i in range(f.start, f.end)}
    for f in full:
        missing = [i for i in range(f.start, f.end) if i not in covered]
        assert not missing, (f, text[f.start : f.end], fast)


@pytest.mark.parametrize("sentence", [s for _, s, _ in REALISTIC] + [HANDBOOK])
def test_the_scan_finds_what_every_recognizer_run_everywhere_finds(sentence):
    _same_findings(sentence)


PIECES = [
    *(secret for _, _, secret in REALISTIC),
    "version 1.2.3.4", "2024-00123", "10:30:00", "::1", "fe80::1ff:fe23:4567:890a",
    "JG 10 37 59 A", "536 22 8749", "4111-1111-1111-1111", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "token =", "password:", "Bearer", "://", "@", "-", " ", "\n", ".", "EUR 45.00",
]  # fmt: skip


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES) | st.text("0123456789 -./:()+@abcXYZ", max_size=12),
                max_size=12))  # fmt: skip
def test_the_scan_and_the_full_scan_agree_on_mixed_text(parts):
    _same_findings(" ".join(parts))
