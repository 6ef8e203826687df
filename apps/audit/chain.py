"""The hash chain: canonical serialisation of an event, its hash, and the verifier.

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

The verifier walks the table by primary-key ranges (keyset pagination), so memory stays
bounded however long the chain is, and no long-lived server-side cursor is held.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    plain = json.loads(text)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit event times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_parts(
    *,
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
        # Python's dumps of what Python's dumps wrote is the identity, so this is the
        # stored text again.
        "details_json": json.dumps(
            doc["details"], sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ),
        "conversation_id": doc["conversation_id"],
        "labels": doc["labels"],
        "left_premises": doc["left_premises"],
        "prev_hash": doc["prev_hash"],
    }


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class EventRef:
    """Enough of an event to name it in a report."""

    id: int
    time: str
    action: str
    actor_username: str
    hash: str

    def __str__(self) -> str:
        who = self.actor_username or "system"
        return f"#{self.id} {self.time} {self.action} by {who}"


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    count: int  # events checked (and found sound) before the first break, or in all
    first: EventRef | None
    last: EventRef | None
    broken_at: int | None = None  # id of the first event whose link does not hold
    problem: str = ""
    start_after: int = 0  # id the walk started after (a checkpoint), 0 from genesis

    def summary(self) -> str:
        if self.intact:
            if self.count == 0:
                return "Audit chain intact: no events to check."
            origin = f" after checkpoint #{self.start_after}" if self.start_after else ""
            return (
                f"Audit chain intact: {self.count} events{origin}.\n"
                f"  first: {self.first}\n"
                f"  last:  {self.last}\n"
                f"  last hash: {self.last.hash if self.last else ''}"
            )
        return (
            f"Audit chain BROKEN at event #{self.broken_at}: {self.problem}\n"
            f"  {self.count} events before it were sound"
            + (f" (last sound: {self.last})" if self.last else "")
            + "."
        )


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

# Columns a verifier reads, in this order (the SQL below and _check_rows agree on it).
VERIFY_COLUMNS = ("id", "time", *CONTENT_FIELDS, "prev_hash", "hash")


TIME_AS_TEXT = """to_char("time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


class ChainWalker:
    """Checks rows one after another; the same logic serves the table and archive files.

    Each row must (1) carry the next id, (2) point at the previous row's hash, (3) not go
    back in time, and (4) hash to its stored hash.
    """

    def __init__(self, *, start_after: int = 0, start_hash: str = GENESIS_HASH) -> None:
        self.start_after = start_after
        self.expected_id = start_after + 1
        self.prev_hash = start_hash
        self.prev_time = ""
        self.count = 0
        self.first: EventRef | None = None
        self.last: EventRef | None = None
        self.broken_at: int | None = None
        self.problem = ""

    def feed(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Check rows in VERIFY_COLUMNS order; False once a link is broken."""
        if self.broken_at is not None:
            return False
        sha256 = hashlib.sha256
        expected_id, prev_hash_ok, prev_time = self.expected_id, self.prev_hash, self.prev_time
        last = None
        try:
            for row in rows:
                (ev_id, ev_time, actor_pk, username, action, t_type, t_id, t_repr) = row[:8]
                (details_json, conv, labels, left, prev_hash, stored_hash) = row[8:]
                time_text = ev_time if isinstance(ev_time, str) else format_time(ev_time)
                if ev_id != expected_id:
                    if ev_id > expected_id:
                        return self._break(
                            expected_id,
                            f"event #{expected_id} is missing (the next event is #{ev_id})",
                        )
                    return self._break(ev_id, f"event #{ev_id} appears out of order")
                if prev_hash != prev_hash_ok:
                    return self._break(
                        ev_id,
                        f"its prev_hash {str(prev_hash)[:16]}… does not match the hash of the "
                        f"event before it ({prev_hash_ok[:16]}…)",
                    )
                if time_text < prev_time:
                    return self._break(ev_id, "its time is earlier than the event before it")
                p1, p2, p3, p4 = canonical_parts(
                    actor_pk=actor_pk,
                    actor_username=username,
                    action=action,
                    target_type=t_type,
                    target_id=t_id,
                    target_repr=t_repr,
                    details_json=details_json,
                    conversation_id=conv,
                    labels=labels,
                    left_premises=left,
                )
                text = "".join((p1, str(ev_id), p2, prev_hash, p3, time_text, p4))
                digest = sha256(text.encode("ascii")).hexdigest()
                if digest != stored_hash:
                    return self._break(
                        ev_id,
                        "its stored hash does not match its contents (the event was altered "
                        f"after it was written; recomputed {digest[:16]}…, stored "
                        f"{str(stored_hash)[:16]}…)",
                    )
                if self.first is None:
                    self.first = EventRef(ev_id, time_text, action, username, stored_hash)
                last = (ev_id, time_text, action, username, stored_hash)
                self.count += 1
                expected_id = ev_id + 1
                prev_hash_ok = stored_hash
                prev_time = time_text
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            # A value no writer could have produced (non-ASCII where the canonical form
            # is ASCII, a wrong type): the row was not written by audit_record.
            return self._break(expected_id, f"it holds a malformed value ({exc})")
        finally:
            self.expected_id, self.prev_hash, self.prev_time = (
                expected_id,
                prev_hash_ok,
                prev_time,
            )
            if last is not None:
                self.last = EventRef(*last)
        return True

    def _break(self, event_id: int, problem: str) -> bool:
        self.broken_at = event_id
        self.problem = problem
        return False

    def report(self) -> ChainReport:
        return ChainReport(
            intact=self.broken_at is None,
            count=self.count,
            first=self.first,
            last=self.last,
            broken_at=self.broken_at,
            problem=self.problem,
            start_after=self.start_after,
        )


def iter_table_batches(
    *, after_id: int, upto_id: int, batch_size: int, using: str = "default"
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of the audit table by id ranges; each batch is one short index range scan."""
    from django.db import connections

    from apps.audit.models import AuditEvent

    table = connections[using].ops.quote_name(AuditEvent._meta.db_table)
    # The time comes as its canonical text, formatted by PostgreSQL exactly as
    # audit_append formats it for the hash (and as format_time does): no datetime
    # objects to build and format again for every row.
    columns = ", ".join(TIME_AS_TEXT if c == "time" else c for c in VERIFY_COLUMNS)
    sql = (
        f"SELECT {columns} FROM {table} "  # noqa: S608 - fixed names only  # nosec B608
        "WHERE id > %s AND id <= %s ORDER BY id LIMIT %s"
    )
    last = after_id
    with connections[using].cursor() as cursor:
        while last < upto_id:
            cursor.execute(sql, [last, upto_id, batch_size])
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]


def verify_chain(
    *,
    start_after: int = 0,
    start_hash: str = GENESIS_HASH,
    batch_size: int = 5000,
    using: str = "default",
) -> ChainReport:
    """Walk the stored chain from genesis (or from a checkpoint) up to its current end.

    The end is fixed when the walk starts, so events appended meanwhile are left for the
    next run instead of making the walk chase a moving target.
    """
    from django.db import connections

    from apps.audit.models import AuditEvent

    walker = ChainWalker(start_after=start_after, start_hash=start_hash)
    with connections[using].cursor() as cursor:
        table = connections[using].ops.quote_name(AuditEvent._meta.db_table)
        # The table name comes from the model, quoted; nothing from input reaches the SQL.
        # nosemgrep: raw-sql-with-interpolation
        cursor.execute(f"SELECT max(id) FROM {table}")  # noqa: S608 - fixed name  # nosec B608
        upto = cursor.fetchone()[0] or 0
    if start_after:
        # The checkpointed event may still be in the table; then it must be unchanged.
        kept = (
            AuditEvent.objects.using(using)
            .filter(id=start_after)
            .values_list("hash", flat=True)
            .first()
        )
        if kept is not None and kept != start_hash:
            walker._break(start_after, "the checkpointed event no longer has the hash signed")
            return walker.report()
    for rows in iter_table_batches(
        after_id=start_after, upto_id=upto, batch_size=batch_size, using=using
    ):
        if not walker.feed(rows):
            break
    return walker.report()
