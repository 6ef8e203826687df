"""Retention periods (apps/compliance/retention.py): what is older goes, what is newer stays,
each run is audited with counts only, and the chain still verifies."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.assistant.models import Conversation, Message
from apps.audit.models import AuditEvent, PersonKey
from apps.audit.personal import ERASED, reveal_events
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain
from apps.compliance.retention import first_kept_month, retention_apply
from apps.core.celery import app
from apps.core.roles import KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Document
from workers.retention import retention_task

pytestmark = pytest.mark.django_db


def _conversation(user, question: str, *, age_days: int) -> Conversation:
    conversation = Conversation.objects.create(user=user, title=question)
    asked = Message.objects.create(conversation=conversation, role="user", content=question)
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        reply_to=asked,
        content="An answer.",
        feedback=-1,
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        updated_at=timezone.now() - timedelta(days=age_days)
    )
    return conversation


def test_conversations_past_their_period_go_and_the_run_is_audited_by_counts(make_user, settings):
    settings.RETENTION_CONVERSATION_DAYS = 30
    user = make_user(username="olaf-asks")
    old = _conversation(user, "Secret old question about the Quarry bid?", age_days=31)
    new = _conversation(user, "Recent question?", age_days=29)
    run = retention_apply()
    assert (run.conversations, run.messages, run.feedback) == (1, 2, 1)
    assert not Conversation.objects.filter(pk=old.pk).exists()
    assert Conversation.objects.filter(pk=new.pk).exists() and new.messages.count() == 2
    event = AuditEvent.objects.get(action="retention.applied")
    assert event.details["conversations"] == 1 and event.details["conversation_days"] == 30
    assert "Quarry" not in event.details_json + event.target_repr
    # Run again: nothing left, nothing recorded.
    assert not retention_apply().removed
    assert AuditEvent.objects.filter(action="retention.applied").count() == 1
    assert verify_chain().intact


def test_an_original_past_its_period_goes_and_the_document_stays(
    settings, django_capture_on_commit_callbacks
):
    settings.RETENTION_UPLOAD_DAYS = 7
    collection = services.collection_create(name="Old files", actor=None)
    doc, _ = services.document_create(
        collection=collection, upload=ContentFile(b"Plain text kept.", name="old.txt"), user=None
    )
    fresh, _ = services.document_create(
        collection=collection, upload=ContentFile(b"Fresh text.", name="fresh.txt"), user=None
    )
    Document.objects.filter(pk=doc.pk).update(
        created_at=timezone.now() - timedelta(days=8), text="Plain text kept.", status="indexed"
    )
    storage, name = doc.file.storage, doc.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        assert retention_apply().originals == 1
    doc.refresh_from_db()
    assert not storage.exists(name) and doc.file.name == ""
    assert doc.text == "Plain text kept." and doc.status == "indexed"
    fresh.refresh_from_db()
    assert fresh.file.storage.exists(fresh.file.name)
    assert AuditEvent.objects.get(action="retention.applied").details["originals"] == 1


def test_the_download_of_a_removed_original_is_not_found(client, make_user, settings):
    settings.RETENTION_UPLOAD_DAYS = 1
    admin = make_user(KNOWLEDGE_ADMIN)
    collection = services.collection_create(name="Gone", actor=None)
    doc, _ = services.document_create(
        collection=collection, upload=ContentFile(b"x y z", name="gone.txt"), user=None
    )
    Document.objects.filter(pk=doc.pk).update(created_at=timezone.now() - timedelta(days=2))
    client.force_login(admin)
    url = reverse("knowledge:document_download", args=[doc.pk])
    assert client.get(url).status_code == 200
    retention_apply()
    assert client.get(url).status_code == 404


def test_personal_audit_fields_of_months_past_their_period_read_erased(make_user, settings):
    settings.RETENTION_AUDIT_PERSONAL_MONTHS = 2
    user = make_user(username="petra-old")
    audit_record(actor=user, action="chat.question", details={"question": "Old question?"})
    assert retention_apply().audit_person_keys == 0  # this month is kept
    later = timezone.now() + timedelta(days=70)  # this month is then two months back
    assert retention_apply(now=later).audit_person_keys == 1
    assert PersonKey.objects.count() == 0
    [shown] = reveal_events(AuditEvent.objects.filter(action="chat.question"))
    assert shown.details["question"] == ERASED and shown.actor_username == ERASED
    assert verify_chain().intact


def test_first_kept_month_counts_across_years():
    when = datetime(2027, 2, 10, tzinfo=UTC)
    assert first_kept_month(when, 1) == "2027-02"
    assert first_kept_month(when, 2) == "2027-01"
    assert first_kept_month(when, 3) == "2026-12"
    assert first_kept_month(when, 14) == "2026-01"


def test_nothing_configured_removes_nothing(make_user, settings):
    settings.RETENTION_CONVERSATION_DAYS = 0
    settings.RETENTION_UPLOAD_DAYS = 0
    settings.RETENTION_AUDIT_PERSONAL_MONTHS = 0
    _conversation(make_user(), "Kept for ever?", age_days=4000)
    assert not retention_apply().removed
    assert Conversation.objects.count() == 1 and AuditEvent.objects.count() == 0


def test_the_command_applies_the_periods_now(make_user, settings):
    out = io.StringIO()
    call_command("retention_apply", stdout=out)
    assert "nothing to do" in out.getvalue()
    settings.RETENTION_CONVERSATION_DAYS = 3
    _conversation(make_user(), "Old?", age_days=4)
    call_command("retention_apply", stdout=out)
    assert "Removed 1 conversations (2 messages, 1 ratings)" in out.getvalue()


def test_beat_runs_the_retention_task(make_user, settings):
    entry = app.conf.beat_schedule["retention"]
    assert entry["task"] == retention_task.name == "workers.retention.retention_task"
    assert entry["schedule"] == float(settings.RETENTION_INTERVAL_SECONDS)
    settings.RETENTION_CONVERSATION_DAYS = 1
    _conversation(make_user(), "Old enough?", age_days=2)
    assert retention_task.run()["conversations"] == 1
