"""The database itself refuses to change or remove audit events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AppendOnlyError, AuditEvent
from apps.audit.personal import reveal_events
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain

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
    # The username is sealed under the person's key, which outlives the account.
    events = reveal_events(AuditEvent.objects.order_by("id"))
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


@pytest.fixture
def app_role(db):
    """A role set up as the README tells production to run the application: every DML
    privilege on every table (UPDATE, DELETE and TRUNCATE on the audit table included,
    as a careless grant would leave them), but neither owner nor superuser.

    Created inside the test's transaction, so it disappears when the test rolls back.
    """
    name = f"enclave_app_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"CREATE ROLE {name} NOLOGIN NOSUPERUSER")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public "
            f"TO {name}"
        )
        cursor.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {name}")
    return name


@contextmanager
def acting_as(role: str) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {role}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def test_the_application_role_can_append_but_not_change_or_switch_off_the_guard(
    app_role, make_user
):
    user = make_user(username="leaver")
    with acting_as(app_role):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            assert cursor.fetchone() == (app_role, False)
        for n in range(3):
            audit_record(actor=user, action="chat.question", details={"n": n})

        def run(sql: str):
            def operation() -> None:
                with connection.cursor() as cursor:
                    cursor.execute(sql)

            return operation

        for sql in (
            "UPDATE audit_auditevent SET details_json = '{}' WHERE id = 2",
            "DELETE FROM audit_auditevent WHERE id = 3",
            "TRUNCATE audit_auditevent",
        ):
            assert "append-only" in refused(run(sql)), sql
        for sql in (
            "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only_rows",
            "DROP TRIGGER audit_append_only_rows ON audit_auditevent",
            "SET session_replication_role = replica",  # would skip ordinary triggers
            "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$",
        ):
            message = refused(run(sql))
            assert "must be owner" in message or "permission denied" in message, (sql, message)
        # Deleting the user still works: the one UPDATE let through clears the link.
        user.delete()
        events = reveal_events(AuditEvent.objects.all())
        assert [(e.actor_id, e.actor_username) for e in events] == [(None, "leaver")] * 3
    assert verify_chain().intact
