"""Personal fields of audit events: sealed under the person's key, opened for the console.

What is personal: the actor's username; the target's text when the target is a person's
own thing (a conversation's title is its first question) or free text (a sign-in attempt
names an account); and these detail keys: PERSONAL_DETAILS. Each such value is replaced,
before the event is hashed, by a sealed token::

    pii1.<key id, 32 hex>.<base64url(nonce || AES-GCM ciphertext)>

whose plaintext is the value's canonical JSON and whose associated data is the key id and
the field's name (a token moved to another field does not open). The chain hashes the
tokens, so once the key is deleted (apps.audit.keys) the text is gone and every hash
still holds. Labels, the conversation id and the left-the-premises flag are copied out of
the details before sealing: the console's filters keep working on them.

Whose key: the actor's; without one, the account a sign-in attempt named, if it exists;
otherwise the "anonymous" key.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.audit.chain import canonical_json
from apps.audit.keys import ANONYMOUS, NONCE_BYTES, DataKey, key_for, keys_by_id, user_subject

if TYPE_CHECKING:
    from apps.audit.models import AuditEvent

# Detail keys whose values are what a person wrote or who they are.
PERSONAL_DETAILS = frozenset(
    {"question", "searched_for", "queries_tried", "ip", "username", "text", "comment"}
)
# Target types whose text is personal; "" is a free-form string target.
PERSONAL_TARGETS = frozenset({"", "assistant.conversation", "auth.user"})
# What the console shows for a field whose key was deleted, and for one whose key no
# longer unwraps (AUDIT_PERSONAL_KEY changed).
ERASED = "[erased]"
UNREADABLE = "[unreadable: the person key does not unwrap with AUDIT_PERSONAL_KEY]"

_PREFIX = "pii1."
_TOKEN = re.compile(r"pii1\.([0-9a-f]{32})\.([A-Za-z0-9_-]{38,})")


def _period() -> str:
    return timezone.now().strftime("%Y-%m")


def subject_for(*, actor_pk: int | None, details: Mapping[str, Any]) -> str:
    if actor_pk is not None:
        return user_subject(actor_pk)
    named = details.get("username")
    if isinstance(named, str) and named:
        users = get_user_model()._default_manager
        pk = users.filter(**{get_user_model().USERNAME_FIELD: named}).values_list("pk").first()
        if pk is not None:
            return user_subject(pk[0])
    return ANONYMOUS


def _seal(key: DataKey, field: str, value: Any) -> str:
    nonce = os.urandom(NONCE_BYTES)
    aad = f"{key.kid}:{field}".encode()
    blob = nonce + key.aead.encrypt(nonce, canonical_json(value).encode(), aad)
    return _PREFIX + key.kid + "." + base64.urlsafe_b64encode(blob).decode().rstrip("=")


def seal_fields(fields: dict[str, Any], details: Mapping[str, Any]) -> None:
    """Replace the personal values of an event's fields (audit_record's dict) in place.

    `details` is the parsed canonical details; ``fields["details_json"]`` is rewritten
    with the personal keys sealed. Nothing to seal: no key is looked up.
    """
    keys = [k for k in sorted(PERSONAL_DETAILS) if details.get(k) not in (None, "", [], {})]
    seal_target = bool(fields["target_repr"]) and fields["target_type"] in PERSONAL_TARGETS
    if not (keys or seal_target or fields["actor_username"]):
        return
    key = key_for(
        subject=subject_for(actor_pk=fields["actor_pk"], details=details), period=_period()
    )
    if fields["actor_username"]:
        fields["actor_username"] = _seal(key, "actor_username", fields["actor_username"])
    if seal_target:
        fields["target_repr"] = _seal(key, "target_repr", fields["target_repr"])
    if keys:
        sealed = dict(details)
        for name in keys:
            sealed[name] = _seal(key, f"details.{name}", details[name])
        fields["details_json"] = canonical_json(sealed)


def kid_of(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(_PREFIX):
        match = _TOKEN.fullmatch(value)
        if match:
            return match.group(1)
    return None


def _open(keys: Mapping[str, DataKey | None], field: str, value: Any) -> tuple[Any, bool]:
    """(what to show, whether it was erased or unreadable)."""
    kid = kid_of(value)
    if kid is None:
        return value, False  # written before sealing existed, or not personal
    if kid not in keys:
        return ERASED, True
    key = keys[kid]
    if key is None:
        return UNREADABLE, True
    raw = value[len(_PREFIX) + 33 :]
    blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    aad = f"{kid}:{field}".encode()
    try:
        plain = key.aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except Exception:  # InvalidTag: a token altered or moved to another field
        return UNREADABLE, True
    return json.loads(plain), False


def event_kids(event: AuditEvent) -> set[str]:
    values = [event.actor_username, event.target_repr, *event.details.values()]
    return {kid for kid in map(kid_of, values) if kid}


def reveal_events(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """The events with their personal fields opened, for display only.

    Each instance's actor_username, target_repr, details (and details_json, as text of
    the opened details) then hold what was written, ERASED where the key is gone; its
    ``revealed`` is True and ``erased`` says whether any field was erased. Such an
    instance no longer hashes to its stored hash: never export or verify it (the
    exports and the verifier read the stored values).
    """
    events = list(events)
    wanted: set[str] = set()
    for event in events:
        wanted |= event_kids(event)
    keys = keys_by_id(wanted) if wanted else {}
    for event in events:
        erased = False
        for field in ("actor_username", "target_repr"):
            shown, gone = _open(keys, field, getattr(event, field))
            setattr(event, field, shown if isinstance(shown, str) else str(shown))
            erased |= gone
        details = dict(event.details)
        for name, value in details.items():
            details[name], gone = _open(keys, f"details.{name}", value)
            erased |= gone
        event.__dict__["_details"] = details
        event.details_json = canonical_json(details)
        event.revealed = True  # type: ignore[attr-defined]
        event.erased = erased  # type: ignore[attr-defined]
    return events
