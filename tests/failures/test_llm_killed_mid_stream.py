"""The local model server (llama.cpp) SIGKILLed in the middle of a streamed answer.

The asker keeps what had arrived, marked incomplete, with a message; the audit records the
failed call (llm.call outcome "failed") and the incomplete answer; and the stronger model
is asked only if the egress gate allows it: never with no provider configured, never for
confidential passages, and for public ones the external answer follows.
"""

from __future__ import annotations

import os
import re
import signal
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.urls import reverse

from apps.assistant.models import Message
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.core.labels import Label
from apps.knowledge import services
from apps.routing import services as routing
from tests.conftest import restart_llm, wait_for_documents
from tests.failures import helpers
from tests.support.fake_provider import FakeProvider, use_as_provider

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_worker", "live_llm"),
]

CANARY = "CANARY-5d1e-LONGSHIP"
HANDBOOK = (
    "# Travel handbook\n\n## Trains and flights\n\n"
    "Employees travel by train for trips under five hours and may fly for longer trips. "
    "Every trip needs a booking through the travel desk, a cost centre and the manager's "
    "approval. Hotel nights are reimbursed up to 140 euros in large cities and 100 euros "
    "elsewhere. Meals are covered by a daily allowance of 45 euros. {canary}\n"
)
# Asks for length, so the answer is still streaming when the server dies.
QUESTION = (
    "Explain the travel handbook in full detail: write a long essay that covers trains, "
    "flights, bookings, approvals, hotels and meals, with many examples for each."
)


def _world(label: str) -> dict:
    readers = Group.objects.create(name=f"Travel {label}")
    collection = helpers.make_collection(f"Travel {label}", groups=[readers], label=label)
    doc, _ = services.document_create(
        collection=collection,
        upload=ContentFile(HANDBOOK.format(canary=CANARY).encode(), name="travel.md"),
        user=None,
    )
    doc = wait_for_documents([doc.pk])[doc.pk]
    assert doc.status == "indexed", doc.failure_reason
    return {"readers": readers, "user": helpers.employee("traveller", readers), "doc": doc}


def _ask_and_kill_after_first_token(client, user, live_llm) -> list[tuple[str, dict]]:  # noqa: ANN001
    """Drive the SSE response by hand; SIGKILL the model server once a token arrived."""
    client.force_login(user)
    resp = client.post(reverse("assistant:ask"), {"question": QUESTION})
    assert resp.status_code == 200
    body, killed = "", False
    try:
        for chunk in resp.streaming_content:
            body += chunk.decode()
            if not killed and "event: token" in body:
                os.killpg(live_llm["proc"].pid, signal.SIGKILL)
                live_llm["proc"].wait(timeout=10)
                killed = True
    finally:
        if not killed:
            os.killpg(live_llm["proc"].pid, signal.SIGKILL)
            live_llm["proc"].wait(timeout=10)
        restart_llm(live_llm)
    assert killed, "the answer finished before the server could be killed"
    return helpers.parse_sse(body)


def _check_partial_answer(events: list[tuple[str, dict]]) -> tuple[dict, list[dict]]:
    first_done = next(i for i, (kind, _) in enumerate(events) if kind == "done")
    tokens = "".join(data["text"] for kind, data in events[:first_done] if kind == "token")
    first, *rest = [data for kind, data in events if kind == "done"]
    assert first["status"] == "incomplete", first
    assert first["where"] == "local"
    assert first["error"], "the asker is told why the answer stopped"
    reply = Message.objects.get(pk=first["message_id"])
    assert reply.status == Message.Status.INCOMPLETE
    # What arrived is what is kept (less the [n] markers matched sentences may get).
    kept = re.sub(r" \[\d+\]", "", reply.content)
    assert tokens and kept.startswith(tokens[:20]), (tokens, reply.content)
    assert reply.error == first["error"]
    conversation = first.get("conversation_id") or str(reply.conversation_id)
    calls = AuditEvent.objects.filter(action="llm.call", conversation_id=conversation)
    call = calls.order_by("id").first()  # the local one; an external one may follow
    assert call.details["outcome"] == "failed" and call.details["where"] == "local"
    answers = AuditEvent.objects.filter(action="chat.answer", conversation_id=conversation)
    assert answers.order_by("id").first().details["status"] == "incomplete"
    return first, rest


@pytest.fixture
def fake(settings):
    with FakeProvider(reply="Trains under five hours, flights beyond [1].") as provider:
        use_as_provider(settings, provider)
        yield provider


def _allow_escalation(group: Group) -> None:
    routing.policy_update(actor=None, escalation_enabled=True, non_sensitive_labels=["public"])
    routing.provider_access_set(
        actor=None,
        provider="fakeai",
        groups=[group],
        daily_token_budget=100_000,
        daily_cost_budget=Decimal("5"),
    )


def test_killed_mid_stream_without_provider_keeps_partial_answer_and_sends_nothing(
    client, settings, live_llm
):
    settings.LOCAL_LLM_MAX_TOKENS = 1024
    world = _world(Label.PUBLIC)
    _, rest = _check_partial_answer(
        _ask_and_kill_after_first_token(client, world["user"], live_llm)
    )
    [fallback] = rest
    assert fallback["status"] == "kept_local"
    assert "No external model is configured" in fallback["html"]
    assert verify_chain().intact


def test_killed_mid_stream_on_confidential_passages_is_not_escalated(
    client, settings, live_llm, fake
):
    settings.LOCAL_LLM_MAX_TOKENS = 1024
    world = _world(Label.CONFIDENTIAL)
    _allow_escalation(world["readers"])
    _, rest = _check_partial_answer(
        _ask_and_kill_after_first_token(client, world["user"], live_llm)
    )
    [fallback] = rest
    assert fallback["status"] == "kept_local"
    assert "stay on our servers" in fallback["html"]
    assert fake.requests == [] and CANARY not in fake.bodies_text()
    decision = AuditEvent.objects.get(action="routing.decision")
    assert decision.details["outcome"] == "deny" and decision.details["trigger"] == "local_down"


def test_killed_mid_stream_on_public_passages_escalates_when_the_gate_allows(
    client, settings, live_llm, fake
):
    settings.LOCAL_LLM_MAX_TOKENS = 1024
    world = _world(Label.PUBLIC)
    _allow_escalation(world["readers"])
    first, rest = _check_partial_answer(
        _ask_and_kill_after_first_token(client, world["user"], live_llm)
    )
    [external] = rest
    assert external["status"] == "complete" and external["where"] == "external", external
    assert len(fake.requests) == 1
    # The partial local answer is not kept as history for the external model.
    assert Message.objects.get(pk=first["message_id"]).status == Message.Status.INCOMPLETE
    assert verify_chain().intact
