"""The suite-wide flush guard (tests/support/audit.py) empties the audit table between
transactional tests without ever leaving it truncatable."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain


def truncate_trigger_state() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_append_only_truncate'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_test_flush_empties_the_table_and_truncate_stays_refused():
    audit_record(actor=None, action="document.uploaded", details={})
    # What teardown runs; keeping the sequences, as teardown does, matters: the session's
    # vector store still holds points of earlier tests' documents, whose ids must not return.
    call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
    assert not AuditEvent.objects.exists()
    assert truncate_trigger_state() == "O"  # enabled ("origin")
    first = audit_record(actor=None, action="document.uploaded", details={})
    assert first.id == 1 and verify_chain().intact
    with pytest.raises(DatabaseError, match="append-only"):
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 1
