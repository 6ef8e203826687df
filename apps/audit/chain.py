"""The hash chain's canonical form: how an event is serialised and hashed.

Canonical form (version 1)
--------------------------
An event's hash is ``sha256(canonical_bytes).hexdigest()`` where ``canonical_bytes`` is
the UTF-8 (in fact pure ASCII) encoding of one JSON object holding every stored column of
the event except ``hash`` itself and the ``actor`` foreign key (which the database sets to
NULL when a user is deleted; the copied ``actor_pk`` and ``actor_username`` are hashed
instead)::

    {"action":"chat.question","actor_pk":7,"actor_username":"alice",
     "conversation_id":"c-12","details":{...},"id":42,"labels":["internal"],
     "left_premises":false,"prev_hash":"<64 hex>","target_id":"12",
     "target_repr":"How do I…","target_type":"assistant.conversation",
     "time":"2025-01-31T09:15:02.123456Z","v":1}

Rules, all of them the defaults of Python's ``json.dumps`` except where named:

* keys sorted (at every depth), separators ``","`` and ``":"`` (no spaces);
* ``ensure_ascii=True``: every non-ASCII character is written as a ``\\uXXXX`` escape,
  so the bytes do not depend on any Unicode normalisation;
* ``NaN`` and infinities are refused (they are not JSON);
* ``time`` is UTC with exactly six fractional digits and a ``Z`` suffix;
* ``id`` is the event's position in the chain (1, 2, 3, … with no gaps);
* ``prev_hash`` is the previous event's ``hash``; the first event's is 64 zeros;
* ``details`` is embedded exactly as stored: the column ``details_json`` holds the
  details already in this canonical form, so a verifier in any language can splice the
  stored text in without re-serialising numbers;
* ``v`` is the version of these rules.

Checking a stored chain against these rules is apps.audit.verify's job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

CANONICAL_VERSION = 1
GENESIS_HASH = "0" * 64

# The C-accelerated string encoder behind json.dumps; returns the quoted JSON string.
_quote = json.encoder.encode_basestring_ascii

# Column order of the canonical object. Kept sorted: the serialiser below writes the keys
# in this order and must agree with json.dumps(sort_keys=True).
CANONICAL_KEYS = (
    "action",
    "actor_pk",
    "actor_username",
    "conversation_id",
    "details",
    "id",
    "labels",
    "left_premises",
    "prev_hash",
    "target_id",
    "target_repr",
    "target_type",
    "time",
    "v",
)
assert list(CANONICAL_KEYS) == sorted(CANONICAL_KEYS)

# An event's own fields, the ones canonical_parts() hashes, in audit_append()'s parameter
# order (migration 0003): the writer and the verifier both take them from here.
CONTENT_FIELDS = (
    "actor_pk",
    "actor_username",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "details_json",
    "conversation_id",
    "labels",
    "left_premises",
)


def canonical_json(value: Any) -> str:
    """Plain JSON data in the canonical text (sorted keys, no spaces, ASCII only).

    For data that is already plain (parsed JSON), this is a fixed point: what it wrote,
    parsed and written again, is the same text.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_details(details: Mapping[str, Any] | None) -> str:
    """The canonical JSON text of an event's details (what ``details_json`` stores).

    Datetimes, dates, Decimals and UUIDs are accepted and written as strings (Django's
    JSON encoder), so callers may pass a cost as a Decimal; anything else that is not
    JSON raises TypeError, and NaN/infinity raise ValueError.
    """
    if details is None:
        return "{}"
    if not isinstance(details, Mapping):
        raise TypeError(f"audit details must be a mapping, not {type(details).__name__}")
    text = json.dumps(
        details,
        cls=DjangoJSONEncoder,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    # A round trip settles what the encoder converted (a datetime becomes its string, an
    # int key becomes a str key); re-dumping the plain value is then the fixed point.
    return canonical_json(json.loads(text))


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit event times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_parts(
    actor_pk: int | None,
    actor_username: str,
    action: str,
    target_type: str,
    target_id: str,
    target_repr: str,
    details_json: str,
    conversation_id: str,
    labels: Sequence[str],
    left_premises: bool,
) -> tuple[str, str, str, str]:
    """The canonical text around the three values only known under the append lock.

    ``canonical_bytes = p1 + id + p2 + prev_hash + p3 + time + p4``. The database
    function audit_append (migration 0003) assembles exactly that and hashes it, so the
    lock is held for one round trip; the verifier uses the same parts.

    The parameters are CONTENT_FIELDS in order, so the verifier passes a row's columns
    as they come; every other caller names them.
    """
    return (
        "".join(
            (
                '{"action":',
                _quote(action),
                ',"actor_pk":',
                "null" if actor_pk is None else str(int(actor_pk)),
                ',"actor_username":',
                _quote(actor_username),
                ',"conversation_id":',
                _quote(conversation_id),
                ',"details":',
                details_json,
                ',"id":',
            )
        ),
        "".join(
            (
                ',"labels":[',
                ",".join(_quote(label) for label in labels),
                '],"left_premises":',
                "true" if left_premises else "false",
                ',"prev_hash":"',
            )
        ),
        "".join(
            (
                '","target_id":',
                _quote(target_id),
                ',"target_repr":',
                _quote(target_repr),
                ',"target_type":',
                _quote(target_type),
                ',"time":"',
            )
        ),
        '","v":' + str(CANONICAL_VERSION) + "}",
    )


def canonical_bytes(*, id: int, time: datetime | str, prev_hash: str, **fields: Any) -> bytes:
    """The bytes an event's hash is computed over (see the module docstring)."""
    p1, p2, p3, p4 = canonical_parts(**fields)
    time_text = time if isinstance(time, str) else format_time(time)
    if not (len(prev_hash) == 64 and prev_hash.isalnum() and time_text.isascii()):
        # Both are spliced in unquoted; anything else would not be the canonical JSON.
        raise ValueError("prev_hash must be 64 hex digits and time canonical")
    return "".join((p1, str(int(id)), p2, prev_hash, p3, time_text, p4)).encode("ascii")


def compute_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical_bytes(**fields)).hexdigest()


def canonical_document(**fields: Any) -> dict[str, Any]:
    """The canonical object as a dict (archives and exports write it, verifiers read it)."""
    time = fields["time"]
    return {
        "action": fields["action"],
        "actor_pk": fields["actor_pk"],
        "actor_username": fields["actor_username"],
        "conversation_id": fields["conversation_id"],
        "details": json.loads(fields["details_json"]),
        "id": fields["id"],
        "labels": list(fields["labels"]),
        "left_premises": bool(fields["left_premises"]),
        "prev_hash": fields["prev_hash"],
        "target_id": fields["target_id"],
        "target_repr": fields["target_repr"],
        "target_type": fields["target_type"],
        "time": time if isinstance(time, str) else format_time(time),
        "v": CANONICAL_VERSION,
    }


def fields_from_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of canonical_document: keyword arguments for canonical_bytes."""
    if doc.get("v") != CANONICAL_VERSION:
        raise ValueError(f"unknown canonical version {doc.get('v')!r}")
    return {
        "id": doc["id"],
        "time": doc["time"],
        "actor_pk": doc["actor_pk"],
        "actor_username": doc["actor_username"],
        "action": doc["action"],
        "target_type": doc["target_type"],
        "target_id": doc["target_id"],
        "target_repr": doc["target_repr"],
        # The parsed details written again canonically: the stored text exactly.
        "details_json": canonical_json(doc["details"]),
        "conversation_id": doc["conversation_id"],
        "labels": doc["labels"],
        "left_premises": doc["left_premises"],
        "prev_hash": doc["prev_hash"],
    }
