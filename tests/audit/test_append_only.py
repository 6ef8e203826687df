"""The database itself refuses to change or remove audit events."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.chain import verify_chain
from apps.audit.models import AppendOnlyError, AuditEvent
from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    return [
        audit_record(actor=None, action="document.uploaded", details={"n": n}) for n in range(3)
    ]


def refused(operation) -> str:
    """Run `operation` in a savepoint; return PostgreSQL's message. Fails if it succeeds."""
    with pytest.raises(DatabaseError) as excinfo, transaction.atomic():
        operation()
    return str(excinfo.value)


def test_orm_update_is_refused_by_the_database(events):
    message = refused(lambda: AuditEvent.objects.filter(id=2).update(action="auth.login"))
    assert "append-only" in message
    message = refused(lambda: AuditEvent.objects.filter(id=2).update(details_json="{}"))
    assert "append-only" in message
    assert AuditEvent.objects.get(id=2).action == "document.uploaded"


def test_orm_delete_is_refused_by_the_database(events):
    assert "append-only" in refused(lambda: AuditEvent.objects.filter(id=3).delete())
    assert "append-only" in refused(lambda: AuditEvent.objects.all().delete())
    assert AuditEvent.objects.count() == 3


def test_model_save_and_delete_refuse_before_reaching_the_database(events):
    event = AuditEvent.objects.get(id=1)
    event.action = "auth.login"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET actor_username = 'mallory' WHERE id = 2",
        "UPDATE audit_auditevent SET hash = prev_hash",
        "DELETE FROM audit_auditevent WHERE id = 3",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        "TRUNCATE audit_auditevent CASCADE",
        "TRUNCATE auth_user CASCADE",
    ],
)
def test_raw_sql_update_delete_and_truncate_are_refused(events, sql):
    def run() -> None:
        with connection.cursor() as cursor:
            # The events were inserted in this test's still-open transaction, so their
            # deferred foreign-key checks are pending, and PostgreSQL would refuse the
            # TRUNCATE for that reason before the trigger is reached. Run them first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(sql)

    assert "append-only" in refused(run)
    assert AuditEvent.objects.count() == 3
    assert verify_chain().intact


def test_deleting_a_user_keeps_their_events_readable(make_user):
    user = make_user(username="departed")
    audit_record(actor=user, action="auth.login", details={"ip": "10.0.0.1"})
    audit_record(actor=user, action="chat.question", details={"conversation_id": "c-9"})
    user_pk = user.pk
    user.delete()  # Django sets actor_id to NULL: the one update the trigger lets through
    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.actor_id, e.actor_pk, e.actor_username) for e in events] == [
        (None, user_pk, "departed"),
        (None, user_pk, "departed"),
    ]
    assert [e.action for e in events] == ["auth.login", "chat.question"]
    assert verify_chain().intact


def test_clearing_the_actor_link_cannot_smuggle_other_changes(make_user):
    user = make_user()
    audit_record(actor=user, action="auth.login")

    def sneaky() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audit_auditevent SET actor_id = NULL, actor_username = 'x' WHERE id = 1"
            )

    assert "append-only" in refused(sneaky)
