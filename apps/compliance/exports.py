"""CSV and JSON renderings of the trail, produced as streams of text chunks.

Both carry every stored column, hashes included, so an unfiltered export can be checked
against the chain outside Enclave. Values are written as stored: a CSV cell that starts
with "=" stays as it is (rewriting it would break the hashes); open exports in a
spreadsheet as text.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from apps.audit.chain import CONTENT_FIELDS, canonical_json, format_time
from apps.audit.models import AuditEvent
from apps.audit.verify import VERIFY_COLUMNS, ChainReport, ChainWalker

# Every stored column in the order of the hashed fields, except that the details (named
# "details") follow the columns audit_record copies out of them.
CSV_COLUMNS = (
    "id",
    "time",
    *(name for name in CONTENT_FIELDS if name != "details_json"),
    "details",
    "prev_hash",
    "hash",
)
JSON_FORMAT = "enclave-audit-export/1"
# Rows are gathered into chunks of about this many characters before they are sent: one
# write per row would make a million-row download crawl.
CHUNK_CHARS = 64 * 1024


class _Line:
    """A file-like object whose write() hands the formatted line back."""

    def write(self, value: str) -> str:
        return value


def event_as_row(event: AuditEvent) -> list[str]:
    return [
        str(event.id),
        format_time(event.time),
        "" if event.actor_pk is None else str(event.actor_pk),
        event.actor_username,
        event.action,
        event.target_type,
        event.target_id,
        event.target_repr,
        event.conversation_id,
        ";".join(event.labels),
        "true" if event.left_premises else "false",
        event.details_json,
        event.prev_hash,
        event.hash,
    ]


def event_as_object(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": format_time(event.time),
        "actor_pk": event.actor_pk,
        "actor_username": event.actor_username,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "conversation_id": event.conversation_id,
        "labels": list(event.labels),
        "left_premises": event.left_premises,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _chunked(parts: Iterable[str]) -> Iterator[str]:
    buffer: list[str] = []
    size = 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= CHUNK_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def csv_stream(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Line())

    def lines() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for event in events:
            yield writer.writerow(event_as_row(event))

    return _chunked(lines())


def json_stream(events: Iterable[AuditEvent], *, header: Mapping[str, Any]) -> Iterator[str]:
    """One JSON object: the header's keys, then "events": [...] written as it streams."""

    def parts() -> Iterator[str]:
        head = json.dumps({"format": JSON_FORMAT, **header}, sort_keys=True)
        yield head[:-1] + ', "events": ['
        separator = "\n"
        for event in events:
            yield separator + json.dumps(event_as_object(event), sort_keys=True)
            separator = ",\n"
        yield "\n]}\n"

    return _chunked(parts())


# --- reading exports back ---------------------------------------------------------------


def object_from_csv_row(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV export's row (from csv.DictReader) as the object the JSON export writes."""
    return {
        "id": int(row["id"]),
        "time": row["time"],
        "actor_pk": int(row["actor_pk"]) if row["actor_pk"] else None,
        "actor_username": row["actor_username"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "target_repr": row["target_repr"],
        "conversation_id": row["conversation_id"],
        "labels": row["labels"].split(";") if row["labels"] else [],
        "left_premises": {"true": True, "false": False}[row["left_premises"]],
        "details": json.loads(row["details"]),
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


def _verify_row(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    fields = dict(obj)
    # Re-serialising the parsed details with the canonical rules gives back the stored
    # text exactly (json.dumps of json.loads of canonical JSON is a fixed point).
    fields["details_json"] = canonical_json(obj["details"])
    return tuple(fields[column] for column in VERIFY_COLUMNS)


def verify_exported(objects: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Check exported events without the database: each must hash to its stored hash
    and link to the one before it.

    Meant for an unfiltered export, which is a contiguous stretch of the chain (from #1,
    or from wherever the first exported event starts). A filtered export skips events,
    so only the first link is checked there; check each event on its own instead with
    ``verify_exported([obj])``.
    """
    walker: ChainWalker | None = None
    for obj in objects:
        if walker is None:
            walker = ChainWalker(start_after=int(obj["id"]) - 1, start_hash=obj["prev_hash"])
        if not walker.feed([_verify_row(obj)]):
            break
    return (walker or ChainWalker()).report()
