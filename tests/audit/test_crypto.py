"""Personal fields of audit events are sealed under the person's key; deleting the key
erases them and the chain still verifies (apps/audit/personal.py, keys.py)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.urls import reverse

from apps.audit.chain import canonical_json
from apps.audit.keys import subject_keys_delete, user_subject
from apps.audit.models import AuditEvent, PersonKey
from apps.audit.personal import ERASED, UNREADABLE, reveal_events
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain

pytestmark = pytest.mark.django_db

QUESTION = "Is my salary of 81k above the Brno median?"


def _raw_row(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT actor_username, target_repr, details_json FROM audit_auditevent WHERE id = %s",
            [event_id],
        )
        return " ".join(cursor.fetchone())


def _ask(user, question: str = QUESTION) -> AuditEvent:
    return audit_record(
        actor=user,
        action="chat.question",
        target="Salary question",
        details={"conversation_id": "c-1", "question": question, "ip": "10.9.8.7", "n": 3},
    )


def test_personal_fields_are_stored_sealed_and_opened_for_the_console(make_user):
    alice = make_user(username="alice-sealed")
    event = _ask(alice)
    stored = _raw_row(event.id)
    for plain in ("alice-sealed", "salary", "10.9.8.7", "Salary question"):
        assert plain not in stored
    assert '"n":3' in stored and '"conversation_id":"c-1"' in stored  # not personal: plain
    assert AuditEvent.objects.get(id=event.id).conversation_id == "c-1"  # still filterable
    [shown] = reveal_events(AuditEvent.objects.filter(id=event.id))
    assert shown.actor_username == "alice-sealed" and shown.target_repr == "Salary question"
    assert shown.details == {
        "conversation_id": "c-1",
        "question": QUESTION,
        "ip": "10.9.8.7",
        "n": 3,
    }
    assert not shown.erased
    assert verify_chain().intact


def test_deleting_the_key_erases_the_text_and_every_hash_still_holds(make_user):
    alice, bob = make_user(username="alice-gone"), make_user(username="bob-stays")
    gone = _ask(alice)
    _ask(bob, "Where is the Brno office?")
    assert subject_keys_delete(subject=user_subject(alice.pk)) == 1
    after = AuditEvent.objects.get(id=gone.id)
    assert (after.hash, after.details_json) == (gone.hash, gone.details_json)  # no row changed
    report = verify_chain()
    assert report.intact and report.count == 2
    shown_gone, shown_kept = reveal_events(AuditEvent.objects.order_by("id"))
    assert shown_gone.erased and shown_gone.actor_username == ERASED
    assert shown_gone.details["question"] == ERASED and shown_gone.details["ip"] == ERASED
    assert shown_gone.details["n"] == 3  # what was not personal stays
    assert shown_kept.details["question"] == "Where is the Brno office?" and not shown_kept.erased


def test_the_database_alone_cannot_open_a_field(make_user, settings):
    event = _ask(make_user(username="carla"))
    wrapped = bytes(PersonKey.objects.get().wrapped)
    assert len(wrapped) == 12 + 32 + 16  # nonce, wrapped 256-bit key, tag: never the raw key
    settings.AUDIT_PERSONAL_KEY = "another-key-than-the-one-it-was-wrapped-with"
    [shown] = reveal_events([AuditEvent.objects.get(id=event.id)])
    assert shown.details["question"] == UNREADABLE and shown.erased


def test_a_sealed_value_moved_to_another_field_does_not_open(make_user, tamper):
    event = _ask(make_user(username="dora"))
    details = AuditEvent.objects.get(id=event.id).details
    swapped = dict(details, ip=details["question"], question=details["ip"])
    tamper(
        "UPDATE audit_auditevent SET details_json = %s WHERE id = %s",
        [canonical_json(swapped), event.id],
    )
    [shown] = reveal_events([AuditEvent.objects.get(id=event.id)])
    assert shown.details["question"] == UNREADABLE and shown.details["ip"] == UNREADABLE
    assert not verify_chain().intact  # and the chain says the row was altered


def test_a_sign_in_attempt_is_sealed_under_the_account_it_named(make_user):
    dave = make_user(username="dave-named")
    for name in ("dave-named", "nobody-known"):
        audit_record(
            actor=None,
            action="auth.login_failed",
            target=name,
            details={"username": name, "ip": "192.0.2.9"},
        )
    assert set(PersonKey.objects.values_list("subject", flat=True)) == {
        user_subject(dave.pk),
        "anonymous",
    }
    subject_keys_delete(subject=user_subject(dave.pk))
    named, unknown = reveal_events(AuditEvent.objects.order_by("id"))
    assert named.target_repr == ERASED and named.details["ip"] == ERASED
    assert unknown.target_repr == "nobody-known"


def test_an_event_with_nothing_personal_makes_no_key():
    audit_record(
        actor=None, action="document.indexed", details={"document_id": 4, "label": "public"}
    )
    assert PersonKey.objects.count() == 0
    assert AuditEvent.objects.get().details == {"document_id": 4, "label": "public"}


def test_a_key_rolled_back_with_its_event_is_made_again(make_user):
    erin = make_user(username="erin-rollback")
    with pytest.raises(RuntimeError), transaction.atomic():
        _ask(erin)
        raise RuntimeError("the action failed")
    assert PersonKey.objects.count() == 0 and AuditEvent.objects.count() == 0
    [shown] = reveal_events([_ask(erin)])
    assert shown.details["question"] == QUESTION


@pytest.mark.django_db(transaction=True)
def test_two_writers_making_one_persons_key_share_one_row(make_user):
    fay = make_user(username="fay-racing")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            start.wait(timeout=10)
            _ask(fay)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert PersonKey.objects.count() == 1
    assert [e.details["question"] for e in reveal_events(AuditEvent.objects.all())] == [
        QUESTION
    ] * 2


def test_the_console_shows_erased_fields_and_filters_by_a_sealed_username(
    officer_client, make_user
):
    gina = make_user(username="gina-filtered")
    event = _ask(gina)
    listing = officer_client.get(reverse("audit:events") + "?user=gina-filtered").content.decode()
    assert "gina-filtered" in listing and "Brno" in listing
    subject_keys_delete(subject=user_subject(gina.pk))
    page = officer_client.get(reverse("audit:event", args=[event.id])).content.decode()
    assert ERASED in page and "erased" in page.lower() and "Brno" not in page
    assert "gina-filtered" not in page
