"""Per-person data keys: made on first use, unwrapped to read, deleted to erase.

Each person has one random 256-bit AES-GCM key per month of events (``PersonKey``). The
row stores it wrapped (AES-GCM) under the key-encryption key derived from
AUDIT_PERSONAL_KEY, which lives in the environment, never in the database. So:

* a dump of the database alone opens nothing (it holds wrapped keys only);
* deleting a person's rows makes their sealed fields unreadable for good, even to
  someone who holds AUDIT_PERSONAL_KEY and an old copy of the audit table.

No key is cached across calls: a key deleted by an erasure in another process must stop
opening text here at once, and a key whose insert was rolled back must never seal a field.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from apps.audit.models import PersonKey

NONCE_BYTES = 12
ANONYMOUS = "anonymous"
_WRAP_LABEL = b"enclave audit person keys v1"


def user_subject(user_pk: int) -> str:
    return f"user:{int(user_pk)}"


@dataclass(frozen=True)
class DataKey:
    kid: str  # 32 hex digits, the PersonKey's id
    aead: AESGCM


class KeyUnreadable(Exception):
    """A key row exists but does not unwrap: AUDIT_PERSONAL_KEY (or SECRET_KEY) changed."""


def _kek() -> AESGCM:
    material = settings.AUDIT_PERSONAL_KEY or settings.SECRET_KEY
    return AESGCM(hmac.new(str(material).encode(), _WRAP_LABEL, hashlib.sha256).digest())


def _unwrap(kid: uuid.UUID, wrapped: bytes | memoryview) -> DataKey:
    blob = bytes(wrapped)
    try:
        raw = _kek().decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], kid.bytes)
    except InvalidTag as exc:
        raise KeyUnreadable(
            f"person key {kid.hex} does not unwrap: AUDIT_PERSONAL_KEY (or SECRET_KEY, when "
            "it is empty) is not the one it was made with"
        ) from exc
    return DataKey(kid=kid.hex, aead=AESGCM(raw))


def key_for(*, subject: str, period: str) -> DataKey:
    """The subject's key for the month `period` ("YYYY-MM"), made if it has none yet.

    Joins the caller's transaction: a key made for an event that rolls back goes with it.
    Two writers making the same key at once: the unique constraint keeps the first, the
    second's insert does nothing and it reads the first's row.
    """
    # Sliced rather than .first(): no ORDER BY to plan for a lookup of one unique row.
    row = PersonKey.objects.filter(subject=subject, period=period).values_list("id", "wrapped")
    found = next(iter(row[:1]), None)
    if found is None:
        kid = uuid.uuid4()
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + _kek().encrypt(nonce, AESGCM.generate_key(bit_length=256), kid.bytes)
        PersonKey.objects.bulk_create(
            [PersonKey(id=kid, subject=subject, period=period, wrapped=wrapped)],
            ignore_conflicts=True,
        )
        found = next(iter(row[:1]), None)
        if found is None:  # pragma: no cover - erased between our insert and read
            raise RuntimeError(f"the key of {subject} for {period} vanished while being made")
    return _unwrap(*found)


def keys_by_id(kids: Iterable[str]) -> dict[str, DataKey | None]:
    """The keys for these ids; an id whose row is gone is absent (erased), one that does
    not unwrap maps to None (unreadable)."""
    wanted = {uuid.UUID(hex=k) for k in kids}
    found: dict[str, DataKey | None] = {}
    for kid, wrapped in PersonKey.objects.filter(id__in=wanted).values_list("id", "wrapped"):
        try:
            found[kid.hex] = _unwrap(kid, wrapped)
        except KeyUnreadable:
            found[kid.hex] = None
    return found


def subject_keys_delete(*, subject: str) -> int:
    """Delete every key of `subject`: their sealed fields can no longer be read."""
    deleted, _ = PersonKey.objects.filter(subject=subject).delete()
    return deleted


def keys_before_delete(*, period: str) -> int:
    """Delete every key of the months before `period` ("YYYY-MM"), for retention."""
    deleted, _ = PersonKey.objects.filter(period__lt=period).delete()
    return deleted


def subject_kids(*, subject: str) -> list[str]:
    return [k.hex for k in PersonKey.objects.filter(subject=subject).values_list("id", flat=True)]
