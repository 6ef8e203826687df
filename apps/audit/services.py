"""Writing the audit trail. ``audit_record`` is the only way an event is created.

Call it inside the transaction of the action it records, as late as possible in that
transaction::

    with transaction.atomic():
        doc = Document.objects.create(...)
        audit_record(actor=user, action="document.uploaded", target=doc,
                     details={"document_id": doc.pk, "label": doc.label, ...})

The event then commits or rolls back with the action. Appends are serialised by a
transaction-level advisory lock (key ``APPEND_LOCK_KEY``) taken before the last hash is
read, so two writers never link to the same predecessor; the primary key (the chain
position) makes a fork a key violation even for a writer that skipped the lock, and a
trigger checks every insert extends the chain. The lock is held until the caller's
transaction ends, which is why the call belongs at the end of it: a transaction that
records an event and then waits on a slow model call stalls every other writer.

Outside any transaction the append is a single statement in autocommit, which is its
own transaction: the event is written atomically on its own, as if wrapped in atomic().

This relies on READ COMMITTED (Django's default): under REPEATABLE READ the last-hash
read could be stale, and the insert then fails on the key instead of forking.

Hash and canonical serialisation: see apps.audit.chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction

from apps.audit.actions import ACTION_RE
from apps.audit.chain import CONTENT_FIELDS, canonical_details, canonical_parts
from apps.audit.models import AuditEvent
from apps.audit.personal import seal_fields

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser as User

# pg_advisory_xact_lock key for appends: the bytes of "encaudit" as a signed bigint.
APPEND_LOCK_KEY = int.from_bytes(b"encaudit", "big")

# details keys whose values are sensitivity labels, and lists of objects that carry one.
_LABEL_KEYS = ("label", "labels", "old_label", "new_label", "previous_label")
_LABELLED_LISTS = ("chunks", "citations", "documents")

_APPEND_SQL = (
    "SELECT * FROM audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# audit_append's parameters after p_actor_id, in its order.
_APPEND_ORDER = CONTENT_FIELDS


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction (or its own).

    ``target`` may be a model instance (stored as "app_label.model", its pk and str(), so
    the record survives the target's deletion) or a free-form string. ``details`` must be
    JSON-serialisable (datetimes, Decimals and UUIDs become strings); a
    ``conversation_id`` key, label keys and an ``llm.call``'s ``where`` are copied into
    indexed columns for the console.
    """
    if not ACTION_RE.match(action) or len(action) > 64:
        raise ValueError(f"audit action must be namespaced like 'document.uploaded': {action!r}")
    details_json = canonical_details(details)
    plain = json.loads(details_json)
    actor_obj, actor_pk, actor_username = _actor_fields(actor)
    target_type, target_id, target_repr = _target_fields(target)
    fields: dict[str, Any] = {
        "actor_pk": actor_pk,
        "actor_username": actor_username,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_repr": target_repr,
        "details_json": details_json,
        "conversation_id": _text(plain.get("conversation_id") or "", 64),
        "labels": labels_from_details(plain),
        "left_premises": action == "llm.call" and plain.get("where") == "external",
    }
    # After the indexed columns are copied out: the personal values are sealed under the
    # person's key, and the hash covers the sealed text (apps.audit.personal).
    seal_fields(fields, plain)
    p1, p2, p3, p4 = canonical_parts(**fields)
    params = [
        actor_obj.pk if actor_obj is not None else None,
        *(fields[name] for name in _APPEND_ORDER),
        p1,
        p2,
        p3,
        p4,
    ]
    if connection.in_atomic_block:
        # Join the caller's transaction; savepoint=False so that a failure here marks
        # the whole action for rollback instead of being swallowed.
        with transaction.atomic(savepoint=False):
            event_id, time, prev_hash, event_hash = _append(params)
    else:
        # No transaction around us: the one statement is its own transaction
        # (autocommit), atomic on its own, and its lock is released the moment it
        # commits, with no client round trip in between.
        event_id, time, prev_hash, event_hash = _append(params)
    event = AuditEvent(
        id=event_id, time=time, actor=actor_obj, prev_hash=prev_hash, hash=event_hash, **fields
    )
    event._state.adding = False
    event._state.db = connection.alias
    return event


def _append(params: list[Any]) -> tuple[int, Any, str, str]:
    # Lock, read the previous event, hash and insert in one round trip (migration 0003).
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, params)
        return cursor.fetchone()


def labels_from_details(details: Mapping[str, Any]) -> list[str]:
    """Every sensitivity label an event's details mention, sorted and unique."""
    found: set[str] = set()

    def take(value: Any) -> None:
        if isinstance(value, str) and value:
            found.add(_text(value.lower(), 16))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str) and item:
                    found.add(_text(item.lower(), 16))

    for key in _LABEL_KEYS:
        take(details.get(key))
    for key in _LABELLED_LISTS:
        items = details.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, Mapping):
                    take(item.get("label"))
    return sorted(found)


def _actor_fields(actor: Any) -> tuple[Any, int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, None, ""
    return actor, actor.pk, _text(actor.get_username(), 150)


def _target_fields(target: models.Model | str | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    if isinstance(target, models.Model):
        meta = target._meta
        return (
            _text(f"{meta.app_label}.{meta.model_name}", 100),
            _text("" if target.pk is None else str(target.pk), 64),
            _text(str(target), 300),
        )
    if isinstance(target, str):
        return "", "", _text(target, 300)
    raise TypeError(f"audit target must be a model instance, a string or None, not {target!r}")


def _text(value: Any, limit: int) -> str:
    """A string PostgreSQL will store unchanged: no NUL, no lone surrogates, within limit."""
    text = str(value).replace("\x00", "\ufffd")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit]
