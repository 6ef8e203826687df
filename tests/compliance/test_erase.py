"""erase_person and export_person without the live parts: the command, the console's
steps and refusals, and the subject access export (apps/compliance/erasure*.py)."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.assistant.models import Conversation, Message
from apps.audit.models import AuditEvent, PersonKey
from apps.audit.personal import ERASED, reveal_events
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain
from apps.compliance.erasure import ErasureError, person_erase

pytestmark = pytest.mark.django_db

QUESTION = "Can I take my parental leave in two parts?"


def _conversation(user, question: str = QUESTION) -> Conversation:
    """A turn as the chat leaves it: the rows and the chat's own audit events."""
    conversation = Conversation.objects.create(user=user, title=question)
    asked = Message.objects.create(conversation=conversation, role="user", content=question)
    answer = Message.objects.create(
        conversation=conversation, role="assistant", reply_to=asked, content="Yes.", feedback=1
    )
    ids = {"conversation_id": str(conversation.pk), "message_id": asked.pk}
    audit_record(
        actor=user,
        action="chat.question",
        target=conversation,
        details={**ids, "question": question},
    )
    audit_record(
        actor=user,
        action="chat.feedback",
        target=conversation,
        details={**ids, "value": "up", "message_id": answer.pk},
    )
    return conversation


def test_the_command_erases_and_the_trail_says_erased(make_user):
    hana = make_user(username="hana-leaves")
    audit_record(actor=hana, action="auth.login", details={"ip": "10.4.4.4"})
    conversation = _conversation(hana)
    out = io.StringIO()
    call_command("erase_person", "hana-leaves", "--yes", stdout=out)
    assert "1 conversations" in out.getvalue() and "audit_verify" in out.getvalue()
    assert not User.objects.filter(username="hana-leaves").exists()
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not PersonKey.objects.filter(subject=f"user:{hana.pk}").exists()
    events = reveal_events(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == [
        "auth.login",
        "chat.question",
        "chat.feedback",
        "person.erased",
    ]
    assert all(e.actor_username == ERASED for e in events[:3])
    assert events[1].details["question"] == ERASED and events[1].target_repr == ERASED
    assert events[3].actor_username == "" and events[3].details["messages"] == 2
    assert verify_chain().intact
    with pytest.raises(CommandError, match="No account is named 'hana-leaves'"):
        call_command("erase_person", "hana-leaves", "--yes")


def test_the_command_asks_for_the_name_again(make_user, monkeypatch):
    make_user(username="ivan-keeps")
    monkeypatch.setattr("builtins.input", lambda prompt: "ivan-keep")
    with pytest.raises(CommandError, match="does not match; nothing was erased"):
        call_command("erase_person", "ivan-keeps", stdout=io.StringIO())
    assert User.objects.filter(username="ivan-keeps").exists()


def test_erasing_one_person_leaves_the_others_readable(make_user):
    jana, karl = make_user(username="jana-erased"), make_user(username="karl-kept")
    _conversation(jana)
    _conversation(karl, "Where do I book a desk?")
    person_erase(user=jana, actor=None)
    kept = reveal_events(AuditEvent.objects.filter(actor_pk=karl.pk).order_by("id"))
    assert kept[0].details["question"] == "Where do I book a desk?"
    assert kept[0].actor_username == "karl-kept"
    assert Conversation.objects.filter(user=karl).count() == 1


def test_an_officer_cannot_erase_themselves(officer):
    with pytest.raises(ErasureError, match="own account"):
        person_erase(user=officer, actor=officer)


def test_the_console_button_previews_and_wants_the_name_typed(officer_client, make_user, employee):
    lena = make_user(username="lena-maybe")
    _conversation(lena)
    url = reverse("audit:erase")
    assert officer_client.get(url).status_code == 200
    unknown = officer_client.post(url, {"step": "preview", "username": "nobody-here"})
    assert unknown.status_code == 400 and "No account is named" in unknown.content.decode()
    preview = officer_client.post(url, {"step": "preview", "username": "lena-maybe"})
    page = preview.content.decode()
    assert "1 conversation," in page and "2 messages" in page and "Type <strong>lena-maybe" in page
    wrong = officer_client.post(url, {"step": "erase", "username": "lena-maybe", "confirm": "lena"})
    assert wrong.status_code == 400 and "nothing was erased" in wrong.content.decode()
    assert User.objects.filter(pk=lena.pk).exists()
    done = officer_client.post(
        url, {"step": "erase", "username": "lena-maybe", "confirm": "lena-maybe"}
    )
    assert done.status_code == 200 and not User.objects.filter(pk=lena.pk).exists()
    record = reveal_events(AuditEvent.objects.filter(action="person.erased"))[0]
    assert record.actor_username == "olivia" and "lena" not in record.details_json


def test_only_compliance_officers_may_erase(client, employee):
    client.force_login(employee)
    assert client.get(reverse("audit:erase")).status_code == 403
    response = client.post(
        reverse("audit:erase"), {"step": "erase", "username": "erin", "confirm": "erin"}
    )
    assert response.status_code == 403 and User.objects.filter(username="erin").exists()


def test_export_person_writes_everything_held_about_them(make_user, tmp_path):
    mona = make_user(username="mona-asks", email="mona@example.com")
    audit_record(
        actor=None,
        action="auth.login_failed",
        target="mona-asks",
        details={"username": "mona-asks", "ip": "192.0.2.44"},
    )
    _conversation(mona)
    audit_record(
        actor=make_user(username="nina-other"),
        action="chat.question",
        details={"question": "Not Mona's."},
    )
    out = tmp_path / "mona.json"
    call_command("export_person", "mona-asks", "--out", str(out), stderr=io.StringIO())
    document = json.loads(out.read_text())
    assert document["format"] == "enclave-subject-access/1"
    assert document["account"]["username"] == "mona-asks"
    assert document["account"]["email"] == "mona@example.com"
    [conversation] = document["conversations"]
    assert [m["content"] for m in conversation["messages"]] == [QUESTION, "Yes."]
    assert conversation["messages"][1]["feedback"] == 1
    actions = [e["action"] for e in document["audit_events"]]
    assert actions == ["auth.login_failed", "chat.question", "chat.feedback"]
    assert document["audit_events"][0]["details"]["ip"] == "192.0.2.44"
    assert document["audit_events"][1]["details"]["question"] == QUESTION
    assert "Not Mona's" not in out.read_text()
    with pytest.raises(CommandError, match="No account is named 'nobody'"):
        call_command("export_person", "nobody")
