"""The egress attestation, from escalations through the real view, gate and recording
stand-in provider: what left (with labels, PII kinds, redactions, tokens, cost), what was
denied and why, totals, a statement checked against the sealed chain and signed with the
seal key; a period with a tampered chain, or with a call that broke the rule, is not
attested."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.seal import stored_seals
from apps.compliance.egress_report import Period, PeriodError
from apps.compliance.egress_statement import egress_report_build, report_signature_valid
from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE
from apps.routing import services as routing
from tests.audit.conftest import tamper  # noqa: F401 - the fixture
from tests.support.egress import answered, escalate, labelled_document
from tests.support.fake_provider import FakeProvider, use_as_provider

pytestmark = pytest.mark.django_db

PUBLIC = "Pathfinder launches on 3 March. The public beta is open to everyone."
SECRET = "The Pathfinder acquisition price is 41 million, known to the board only."


@pytest.fixture
def stand_in(settings):
    with FakeProvider(reply="Pathfinder launches on 3 March [1].") as fake:
        use_as_provider(settings, fake, name="fakeai")
        settings.EXTERNAL_LLM_PRICE_PER_1K = 0.5
        settings.ESCALATION_RATE_PER_MINUTE = 0
        settings.EGRESS_USER_DAILY_TOKENS = 0
        settings.EGRESS_GROUP_DAILY_TOKENS = 0
        routing.policy_update(actor=None, escalation_enabled=True, non_sensitive_labels=["public"])
        yield fake


@pytest.fixture
def people(stand_in) -> dict[str, User]:
    sales, support = Group.objects.create(name="Sales"), Group.objects.create(name="Support")
    routing.provider_access_set(
        actor=None, provider="fakeai", groups=[sales, support], daily_token_budget=100_000,
        daily_cost_budget=Decimal("50"),
    )  # fmt: skip
    found = {}
    for name, team in (("sam", sales), ("sue", support)):
        user = User.objects.create_user(name, password=f"pw-{name}-12345")
        user.groups.add(Group.objects.get(name=EMPLOYEE), team)
        found[name] = user
    return found


def ask(client, user: User, label: str, text: str, question: str) -> dict:
    doc = labelled_document(label, text, title=f"{label} brief for {user.username}")
    return escalate(client, user, answered(user, [doc], question=question))


def today() -> Period:
    day = timezone.now().date()
    return Period(day, day)


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("egress_report", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def test_a_clean_period_is_attested_with_every_call_denial_and_total(client, people, stand_in):
    assert (
        ask(client, people["sam"], "public", PUBLIC, "When does Pathfinder launch?")["status"]
        == "complete"
    )
    assert ask(client, people["sue"], "public", PUBLIC, "Is the beta open?")["status"] == "complete"
    refused = ask(client, people["sam"], "confidential", SECRET, "What is the price?")
    assert refused["status"] == "kept_local"
    assert len(stand_in.requests) == 2

    report = egress_report_build(period=today(), generated_by="olivia")
    assert report["attested"] is True
    assert report["statement"].startswith(
        "No passage labelled internal, confidential or restricted was sent"
    )
    assert "2 answers left the premises, 1 escalation was denied" in report["statement"]
    seal = report["chain"]["seal"]
    assert f"chain intact up to seal #{seal['seq']}" in report["statement"]
    assert seal["last_id"] >= report["events"]["last_id"]  # sealed for the report
    assert stored_seals()[-1].seq == seal["seq"]

    sent = report["sent"]
    assert [(e["user"], e["provider"], e["model"], e["labels"]) for e in sent] == [
        ("sam", "fakeai", "gpt-fake", ["public"]),
        ("sue", "fakeai", "gpt-fake", ["public"]),
    ]
    calls = AuditEvent.objects.filter(action="llm.call", left_premises=True).order_by("id")
    for entry, event in zip(sent, calls, strict=True):
        assert entry["event_id"] == event.id
        assert entry["payload_sha256"] == event.details["payload_sha256"]
        assert entry["prompt_tokens"] == event.details["prompt_tokens"] > 0
        assert entry["cost"] == event.details["cost"]
        assert entry["decision_event_id"] < entry["event_id"] and entry["problems"] == []
    (denial,) = report["denied"]
    assert denial["user"] == "sam" and denial["trigger"] == "user"
    assert [r["code"] for r in denial["reasons"]] == ["sensitive_context", "tainted"]
    assert denial["labels"] == ["confidential"]
    assert "confidential documents" in denial["reasons"][0]["message"]

    totals = report["totals"]
    assert totals["calls"] == 2
    assert totals["prompt_tokens"] == sum(e["prompt_tokens"] for e in sent)
    assert Decimal(totals["cost"]) == sum(Decimal(e["cost"]) for e in sent)
    assert {r["user"]: r["calls"] for r in totals["by_user"]} == {"sam": 1, "sue": 1}
    by_group = {r["group"]: r["calls"] for r in totals["by_group"]}
    assert by_group["Sales"] == 1 and by_group["Support"] == 1 and by_group[EMPLOYEE] == 2
    assert [(r["provider"], r["calls"]) for r in totals["by_provider"]] == [
        ("fakeai / gpt-fake", 2)
    ]
    assert report_signature_valid(report)


def test_pii_kinds_and_redactions_of_what_was_sent_are_listed(client, people, stand_in):
    routing.policy_update(actor=None, pii_mode="redact")
    done = ask(client, people["sam"], "public", PUBLIC, "Mail sam@example.com the launch date?")
    assert done["status"] == "complete"
    (entry,) = egress_report_build(period=today(), generated_by="t")["sent"]
    assert entry["redactions"] == ["EMAIL_ADDRESS"] and entry["labels"] == ["public"]
    assert "sam@example.com" not in json.dumps(entry)


def test_a_period_in_which_internal_text_left_is_not_attested(client, people, stand_in):
    routing.policy_update(actor=None, non_sensitive_labels=["public", "internal"])
    assert ask(client, people["sue"], "internal", PUBLIC, "When is it?")["status"] == "complete"
    report = egress_report_build(period=today(), generated_by="t")
    assert report["attested"] is False
    (entry,) = report["sent"]
    assert entry["problems"] == ["passages labelled internal were sent"]
    assert report["statement"].startswith("NOT ATTESTED: 1 of 1 external calls")
    assert f"event #{entry['event_id']}" in report["statement"]
    assert report["chain"]["intact"]


def test_a_tampered_chain_is_said_instead_of_attested(client, people, stand_in, tamper):  # noqa: F811
    ask(client, people["sam"], "public", PUBLIC, "When does Pathfinder launch?")
    call = AuditEvent.objects.get(action="llm.call", left_premises=True)
    # Hide that the answer left: the owner flips the column back.
    tamper("UPDATE audit_auditevent SET left_premises = false WHERE id = %s", [call.id])
    report = egress_report_build(period=today(), generated_by="t")
    assert report["attested"] is False and report["chain"]["intact"] is False
    assert report["statement"].startswith("NOT ATTESTED: the audit chain does not verify")
    assert f"#{call.id}" in report["statement"]


def test_command_writes_a_signed_report_and_checks_it(client, people, stand_in, tmp_path):
    ask(client, people["sam"], "public", PUBLIC, "When does Pathfinder launch?")
    day = timezone.now().date().isoformat()
    out = tmp_path / "report.json"
    code, output = run("--from", day, "--to", day, "--out", str(out))
    assert code == 0, output
    assert "No passage labelled" in output and "fakeai / gpt-fake: 1 calls" in output
    code, output = run("--verify", str(out))
    assert code == 0 and "signature valid" in output
    altered = json.loads(out.read_text())
    altered["sent"] = []
    out.write_text(json.dumps(altered))
    code, output = run("--verify", str(out))
    assert code == 1 and "does not match" in output
    made = AuditEvent.objects.filter(action="audit.egress_reported").latest("id")
    assert made.details["attested"] is True and made.details["sent"] == 1


def test_command_rejects_a_backwards_or_malformed_period():
    with pytest.raises(PeriodError, match="before"):
        Period.parse("2026-12-31", "2026-10-01")
    assert "YYYY-MM-DD" in run("--from", "31/12/2026", "--to", "2026-12-31")[1]
    assert "--from" in run()[1]


def test_an_empty_period_attests_that_nothing_left():
    old = (timezone.now() - timedelta(days=400)).date()
    report = egress_report_build(period=Period(old, old), generated_by="t")
    assert report["sent"] == [] and report["events"]["count"] == 0
    assert report["attested"] and "0 answers left the premises" in report["statement"]


def test_console_page_prints_and_downloads_for_officers_only(client, people, stand_in):
    ask(client, people["sam"], "public", PUBLIC, "When does Pathfinder launch?")
    url = reverse("audit:egress_report")
    client.force_login(people["sue"])
    assert (
        client.post(url, {"first_day": "2026-01-01", "last_day": "2026-01-02"}).status_code == 403
    )
    officer = User.objects.create_user("olivia")
    officer.groups.add(Group.objects.get(name=COMPLIANCE_OFFICER))
    client.force_login(officer)
    assert client.get(url).status_code == 200
    day = timezone.now().date().isoformat()
    page = client.post(url, {"first_day": day, "last_day": day, "format": "html"})
    text = page.content.decode()
    assert page.status_code == 200 and "Attested" in text and "No passage labelled" in text
    assert "fakeai / gpt-fake" in text and "sam" in text
    download = client.post(url, {"first_day": day, "last_day": day, "format": "json"})
    assert download["Content-Disposition"].startswith('attachment; filename="egress-report-')
    report = json.loads(download.content)
    assert report["generated_by"] == "olivia" and report_signature_valid(report)
    bad = client.post(url, {"first_day": day, "last_day": "2000-01-01"})
    assert bad.status_code == 400 and "before" in bad.content.decode()
