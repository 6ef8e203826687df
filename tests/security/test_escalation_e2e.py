"""Escalation through the real chat: worker, vector store owner, llama.cpp server, and a
recording HTTP server as the external provider."""

from __future__ import annotations

import hashlib
import json
import signal
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.urls import reverse

from apps.assistant.models import Conversation, Message
from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE
from apps.knowledge import services as knowledge
from apps.routing import services as routing
from tests.conftest import restart_llm, wait_for_documents
from tests.support.fake_provider import FakeProvider, use_as_provider

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_worker", "live_llm"),
]

CANARY = "CANARY-91c2-NIGHTJAR"
LAUNCH = (
    "# Pathfinder launch\n\n## Dates\n\nPathfinder launches publicly on 3 March. The public "
    "beta opens two weeks earlier for everyone who signs up on the website.\n"
)
NIGHTJAR = (
    "# Nightjar\n\n## Budget\n\nThe Nightjar acquisition budget is 4.2 million euros and the "
    f"launch of the merged product is planned for June. {CANARY}\n"
)


@pytest.fixture
def fake(settings):
    with FakeProvider(reply="Pathfinder launches on 3 March [1].") as provider:
        use_as_provider(settings, provider)
        yield provider


@pytest.fixture
def people(fake):
    """Two collections: public launch notes for all staff, a confidential deal for the deal
    team. Eve reads both; Pat reads only the public one."""
    staff, deals = Group.objects.create(name="Staff"), Group.objects.create(name="Deal team")
    public = knowledge.collection_create(
        name="Launch", actor=None, default_label=Label.PUBLIC, groups=[staff]
    )
    confidential = knowledge.collection_create(
        name="Deals", actor=None, default_label=Label.CONFIDENTIAL, groups=[deals]
    )
    launch, _ = knowledge.document_create(
        collection=public, upload=ContentFile(LAUNCH.encode(), name="launch.md"), user=None
    )
    secret, _ = knowledge.document_create(
        collection=confidential,
        upload=ContentFile(NIGHTJAR.encode(), name="nightjar.md"),
        user=None,
    )
    docs = wait_for_documents([launch.pk, secret.pk])
    assert {d.status for d in docs.values()} == {"indexed"}, [
        d.failure_reason for d in docs.values()
    ]
    routing.policy_update(actor=None, escalation_enabled=True, non_sensitive_labels=["public"])
    routing.provider_access_set(
        actor=None,
        provider="fakeai",
        groups=[staff],
        daily_token_budget=100_000,
        daily_cost_budget=Decimal("5"),
    )
    employees = Group.objects.get(name=EMPLOYEE)
    eve = User.objects.create_user("eve", password="pw-eve-12345")
    eve.groups.add(employees, staff, deals)
    pat = User.objects.create_user("pat", password="pw-pat-12345")
    pat.groups.add(employees, staff)
    return {"eve": eve, "pat": pat, "launch": docs[launch.pk], "secret": docs[secret.pk]}


def _stream(client, url: str, data: dict | None = None) -> list[tuple[str, dict]]:
    resp = client.post(url, data or {})
    assert resp.status_code == 200, resp.content
    events = []
    for block in b"".join(resp.streaming_content).decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def _dones(events) -> list[dict]:
    return [data for kind, data in events if kind == "done"]


def test_a_conversation_that_retrieved_a_confidential_chunk_never_escalates(client, fake, people):
    client.force_login(people["eve"])
    first = _dones(
        _stream(client, reverse("assistant:ask"), {"question": "What is the Nightjar budget?"})
    )[0]
    conversation = Conversation.objects.get(pk=first["conversation_id"])
    assert "confidential" in conversation.touched_labels  # recorded by the chat itself
    # Eve leaves the deal team: the next turn can only retrieve public chunks, so nothing
    # but the conversation's taint can keep it local.
    people["eve"].groups.remove(Group.objects.get(name="Deal team"))
    second = _dones(
        _stream(
            client,
            reverse("assistant:ask"),
            {"question": "When does Pathfinder launch?", "conversation": str(conversation.pk)},
        )
    )[0]
    asked = Message.objects.get(pk=second["message_id"]).reply_to
    assert asked.retrieved and {p["label"] for p in asked.retrieved} == {"public"}
    done = _dones(_stream(client, reverse("assistant:escalate", args=[second["message_id"]])))
    assert done[0]["status"] == "kept_local"
    assert fake.requests == [] and CANARY not in fake.bodies_text()
    decision = AuditEvent.objects.filter(
        action="routing.decision", conversation_id=str(conversation.pk)
    ).latest("id")
    assert decision.details["labels"] == ["public"]  # the passages sent would be public
    assert [r["code"] for r in decision.details["reasons"]] == ["tainted"]
    text = Message.objects.get(pk=done[0]["message_id"]).content
    assert "used confidential documents earlier" in text


def test_a_clean_public_question_escalates_and_the_sent_bytes_match_the_audit(client, fake, people):
    client.force_login(people["pat"])
    answer = _dones(
        _stream(client, reverse("assistant:ask"), {"question": "When does Pathfinder launch?"})
    )[0]
    reply = Message.objects.get(pk=answer["message_id"])
    assert reply.conversation.touched_labels == ["public"]
    done = _dones(_stream(client, reverse("assistant:escalate", args=[reply.pk])))[0]
    assert done["status"] == "complete", done
    assert len(fake.requests) == 1 and CANARY not in fake.bodies_text()
    call = AuditEvent.objects.get(action="llm.call", left_premises=True)
    assert call.details["payload_sha256"] == hashlib.sha256(fake.requests[0].body).hexdigest()


def test_local_model_down_escalates_only_if_the_gate_allows(client, fake, people, live_llm):
    live_llm["proc"].send_signal(signal.SIGKILL)
    live_llm["proc"].wait(timeout=10)
    try:
        client.force_login(people["eve"])
        secret_events = _stream(
            client, reverse("assistant:ask"), {"question": "What is the Nightjar budget?"}
        )
        client.force_login(people["pat"])
        public_events = _stream(
            client, reverse("assistant:ask"), {"question": "When does Pathfinder launch?"}
        )
    finally:
        restart_llm(live_llm)
    # The confidential question: the local model's failure is said, and it stays local.
    local, kept = _dones(secret_events)
    assert local["status"] == "failed" and "not reachable" in local["error"]
    assert kept["status"] == "kept_local"
    assert CANARY not in fake.bodies_text()
    # Pat's public one: the stronger model answers instead.
    local, external = _dones(public_events)
    assert local["status"] == "failed"
    assert external["status"] == "complete" and external["where"] == "external"
    assert len(fake.requests) == 1
    decision = AuditEvent.objects.filter(action="routing.decision").latest("id")
    assert decision.details["trigger"] == "local_down" and decision.details["outcome"] == "allow"
