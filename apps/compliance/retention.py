"""Retention: conversations, uploaded originals and the audit trail's personal fields are
kept for configured periods, then removed by a Celery beat task (workers/retention.py).

* RETENTION_CONVERSATION_DAYS: a conversation whose last turn is older goes, with its
  questions, answers and feedback.
* RETENTION_UPLOAD_DAYS: an upload's original file goes; the document stays indexed and
  searchable, its download answers 404.
* RETENTION_AUDIT_PERSONAL_MONTHS: person keys of older months are deleted, so those
  months' usernames, questions and addresses read "erased" in the audit trail. Events are
  never deleted and the chain still verifies.

0 keeps for ever. Each run that removes anything records ``retention.applied`` with the
counts and the periods, never what was removed, in the same transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import Storage
from django.db import transaction
from django.utils import timezone

from apps.assistant.models import Conversation, Message
from apps.audit.keys import keys_before_delete
from apps.audit.services import audit_record
from apps.knowledge.models import Document


@dataclass(frozen=True)
class RetentionRun:
    conversations: int = 0
    messages: int = 0
    feedback: int = 0
    originals: int = 0
    audit_person_keys: int = 0
    conversation_days: int = 0
    upload_days: int = 0
    audit_personal_months: int = 0

    @property
    def removed(self) -> bool:
        return any((self.conversations, self.originals, self.audit_person_keys))


def first_kept_month(now: datetime, months: int) -> str:
    """The earliest "YYYY-MM" whose keys are kept: the current month and `months - 1`
    before it (months=1 keeps only the current month)."""
    index = now.year * 12 + (now.month - 1) - (months - 1)
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def retention_apply(*, now: datetime | None = None) -> RetentionRun:
    """Apply every configured period once; safe to run again (nothing left to remove)."""
    now = now or timezone.now()
    days_c = settings.RETENTION_CONVERSATION_DAYS
    days_u = settings.RETENTION_UPLOAD_DAYS
    months_a = settings.RETENTION_AUDIT_PERSONAL_MONTHS
    counts: dict[str, int] = {}
    stored: list[str] = []
    with transaction.atomic():
        if days_c:
            old = Conversation.objects.filter(updated_at__lt=now - timedelta(days=days_c))
            messages = Message.objects.filter(conversation__in=old)
            counts["messages"] = messages.count()
            counts["feedback"] = messages.filter(feedback__isnull=False).count()
            counts["conversations"] = old.count()
            old.delete()
        if days_u:
            uploads = Document.objects.filter(created_at__lt=now - timedelta(days=days_u))
            uploads = uploads.exclude(file="").select_for_update()
            stored = [name for name in uploads.values_list("file", flat=True) if name]
            counts["originals"] = Document.objects.filter(file__in=stored).update(file="")
        if months_a:
            counts["audit_person_keys"] = keys_before_delete(period=first_kept_month(now, months_a))
        run = RetentionRun(
            **counts,
            conversation_days=days_c,
            upload_days=days_u,
            audit_personal_months=months_a,
        )
        if run.removed:
            audit_record(actor=None, action="retention.applied", details=asdict(run))
        if stored:
            storage = Document._meta.get_field("file").storage
            # Files go once the rows no longer name them; a rollback keeps both.
            transaction.on_commit(lambda: _delete_files(storage, stored))
    return run


def _delete_files(storage: Storage, names: list[str]) -> None:
    for name in names:
        storage.delete(name)
