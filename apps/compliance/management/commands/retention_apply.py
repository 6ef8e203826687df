"""manage.py retention_apply: apply the RETENTION_* periods now, as Celery beat does on its
schedule (apps/compliance/retention.py), and say what was removed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.compliance.retention import retention_apply


class Command(BaseCommand):
    help = "Apply the retention periods now (conversations, originals, personal audit fields)."

    def handle(self, *args: Any, **options: Any) -> None:
        run = retention_apply()
        if not (run.conversation_days or run.upload_days or run.audit_personal_months):
            self.stdout.write("No retention period is set (RETENTION_* are all 0): nothing to do.")
            return
        self.stdout.write(
            f"Removed {run.conversations} conversations ({run.messages} messages, "
            f"{run.feedback} ratings), {run.originals} uploaded originals and "
            f"{run.audit_person_keys} person keys"
            + ("; recorded as retention.applied." if run.removed else ".")
        )
