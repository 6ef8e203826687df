"""audit_record: the chain it builds, what it copies, and the canonical hash input."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.audit.chain import (
    GENESIS_HASH,
    canonical_bytes,
    canonical_details,
    compute_hash,
)
from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events
from apps.audit.services import APPEND_LOCK_KEY, audit_record, labels_from_details
from apps.audit.verify import verify_chain
from apps.knowledge.models import Collection

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def stored_fields(event: AuditEvent) -> dict[str, object]:
    return {
        "id": event.id,
        "time": event.time,
        "actor_pk": event.actor_pk,
        "actor_username": event.actor_username,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "details_json": event.details_json,
        "conversation_id": event.conversation_id,
        "labels": event.labels,
        "left_premises": event.left_premises,
        "prev_hash": event.prev_hash,
    }


def test_events_form_a_chain_from_genesis(make_user):
    user = make_user()
    first = audit_record(actor=user, action="document.uploaded", details={"n": 1})
    second = audit_record(actor=None, action="document.indexed", details={"n": 2})
    assert (first.id, second.id) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.time >= first.time
    for event in AuditEvent.objects.all():
        assert event.hash == compute_hash(**stored_fields(event))
    assert verify_chain().intact


def test_actor_and_target_are_copied_so_they_survive_deletion(make_user):
    user = make_user(username="alice")
    collection = Collection.objects.create(name="Handbooks")
    event = audit_record(
        actor=user, action="collection.access_changed", target=collection, details={}
    )
    [event] = reveal_events([event])  # the username is sealed under alice's key
    assert (event.actor_id, event.actor_pk, event.actor_username) == (user.pk, user.pk, "alice")
    assert (event.target_type, event.target_id, event.target_repr) == (
        "knowledge.collection",
        str(collection.pk),
        "Handbooks",
    )
    free = audit_record(actor=None, action="policy.changed", target="egress policy")
    [free] = reveal_events([free])
    assert (free.target_type, free.target_id, free.target_repr) == ("", "", "egress policy")


def test_event_rolls_back_with_the_action_it_records():
    audit_record(actor=None, action="document.uploaded", details={"keep": True})
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="document.uploaded", details={"keep": False})
        raise RuntimeError("the upload failed after its event was written")
    after = audit_record(actor=None, action="document.indexed")
    assert list(AuditEvent.objects.order_by("id").values_list("id", flat=True)) == [1, 2]
    assert after.id == 2
    assert verify_chain().intact


def test_details_are_stored_canonically_and_read_back_equal():
    details = {
        "b": [1, 2.5, None, True],
        "a": {"z": "é ✓ \u0000", "y": -0.0},
        "when": datetime(2025, 1, 2, 3, 4, 5, 6789, tzinfo=UTC),
        "cost": Decimal("0.0012"),
        "id": uuid.UUID(int=7),
    }
    event = audit_record(actor=None, action="llm.call", details=details)
    stored = AuditEvent.objects.get(id=event.id)
    assert stored.details_json == canonical_details(details)
    assert stored.details_json.isascii()
    assert stored.details["a"]["z"] == "é ✓ \u0000"
    assert stored.details["when"] == "2025-01-02T03:04:05.006Z"
    assert stored.details["cost"] == "0.0012"
    assert list(json.loads(stored.details_json)) == sorted(details)


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": object()}, ["not", "a", "mapping"]])
def test_details_that_are_not_json_are_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        audit_record(actor=None, action="chat.question", details=bad)
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("action", ["login", "Auth.Login", "auth.", "auth login", ".x", ""])
def test_action_names_must_be_namespaced(action):
    with pytest.raises(ValueError):
        audit_record(actor=None, action=action)


def test_console_columns_are_derived_from_details():
    retrieval = audit_record(
        actor=None,
        action="chat.retrieval",
        details={
            "conversation_id": "c-1",
            "chunks": [
                {"id": "a", "document_id": 1, "label": "public", "score": 0.9},
                {"id": "b", "document_id": 2, "label": "Confidential", "score": 0.5},
            ],
        },
    )
    assert retrieval.labels == ["confidential", "public"]
    assert retrieval.conversation_id == "c-1"
    assert not retrieval.left_premises
    external = audit_record(
        actor=None, action="llm.call", details={"where": "external", "conversation_id": 42}
    )
    local = audit_record(actor=None, action="llm.call", details={"where": "local"})
    lookalike = audit_record(actor=None, action="routing.decision", details={"where": "external"})
    assert (external.left_premises, local.left_premises, lookalike.left_premises) == (
        True,
        False,
        False,
    )
    assert external.conversation_id == "42"
    assert labels_from_details({"old_label": "internal", "label": "restricted"}) == [
        "internal",
        "restricted",
    ]


def test_a_writer_that_skips_audit_record_cannot_fork_the_chain():
    first = audit_record(actor=None, action="document.uploaded")
    fields = stored_fields(first)
    for forged in ({**fields}, {**fields, "id": 5}, {**fields, "id": 2}):
        forged_hash = compute_hash(**forged)
        with pytest.raises(IntegrityError), transaction.atomic():
            AuditEvent(hash=forged_hash, **forged).save(force_insert=True)
    assert AuditEvent.objects.count() == 1


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    details=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    username=st.text(max_size=20),
    repr_=st.text(max_size=30),
    labels=st.lists(st.text(max_size=5), max_size=3),
    actor_pk=st.none() | st.integers(min_value=1, max_value=2**40),
)
def test_canonical_bytes_are_sorted_compact_ascii_json(details, username, repr_, labels, actor_pk):
    """The fast serialiser writes exactly json.dumps(sort_keys=True) of the document."""
    when = datetime(2025, 5, 6, 7, 8, 9, 123, tzinfo=UTC)
    fields = {
        "id": 3,
        "time": when,
        "actor_pk": actor_pk,
        "actor_username": username,
        "action": "chat.answer",
        "target_type": "assistant.message",
        "target_id": "9",
        "target_repr": repr_,
        "details_json": canonical_details(details),
        "conversation_id": "c",
        "labels": labels,
        "left_premises": False,
        "prev_hash": "ab" * 32,
    }
    document = {
        **{k: v for k, v in fields.items() if k != "details_json"},
        "details": json.loads(fields["details_json"]),
        "time": "2025-05-06T07:08:09.000123Z",
        "v": 1,
    }
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical_bytes(**fields) == expected.encode("ascii")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(details=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_any_json_details_survive_the_database_and_still_verify(details):
    event = audit_record(actor=None, action="chat.feedback", details=details)
    stored = AuditEvent.objects.get(id=event.id)
    assert stored.hash == compute_hash(**stored_fields(stored))
    assert stored.details == json.loads(canonical_details(details))


def test_the_append_lock_is_held_until_the_transaction_ends():
    """A second writer waits for this transaction, so it links to the committed event."""

    def lock_held() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 1",
                [APPEND_LOCK_KEY >> 32, APPEND_LOCK_KEY & 0xFFFFFFFF],
            )
            return cursor.fetchone()[0] == 1

    assert not lock_held()
    audit_record(actor=None, action="document.uploaded")
    assert lock_held()  # the test's transaction is still open
