"""Verifying the hash chain: the walker that checks rows link by link, and the walk over
the stored table.

The same walker checks the table, archive files (apps.audit.archive) and exports (the
console's verify_exported), so "intact" means one thing everywhere. The table is read by
primary-key ranges (keyset pagination): memory stays bounded however long the chain is,
and no long-lived server-side cursor is held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections

from apps.audit.chain import CONTENT_FIELDS, GENESIS_HASH, canonical_parts, format_time
from apps.audit.models import AuditEvent

# Columns a verifier reads, in this order (the SQL below and ChainWalker.feed agree on it).
VERIFY_COLUMNS = ("id", "time", *CONTENT_FIELDS, "prev_hash", "hash")
# Where a report's names for an event sit among its content fields.
_ACTION = CONTENT_FIELDS.index("action")
_USERNAME = CONTENT_FIELDS.index("actor_username")

# The time as its canonical text, formatted by PostgreSQL exactly as audit_append formats
# it for the hash (and as format_time does): no datetime objects to build and format again
# for every row.
TIME_AS_TEXT = """to_char("time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


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
                ev_id, ev_time, *content, prev_hash, stored_hash = row
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
                p1, p2, p3, p4 = canonical_parts(*content)
                text = "".join((p1, str(ev_id), p2, prev_hash, p3, time_text, p4))
                digest = sha256(text.encode("ascii")).hexdigest()
                if digest != stored_hash:
                    return self._break(
                        ev_id,
                        "its stored hash does not match its contents (the event was altered "
                        f"after it was written; recomputed {digest[:16]}…, stored "
                        f"{str(stored_hash)[:16]}…)",
                    )
                ref = (ev_id, time_text, content[_ACTION], content[_USERNAME], stored_hash)
                if self.first is None:
                    self.first = EventRef(*ref)
                last = ref
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
    table = connections[using].ops.quote_name(AuditEvent._meta.db_table)
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
