"""The SIEM feed: every audit event once, in chain order, as one JSON line for the
company's SIEM, in a file and/or to syslog.

Shape (OCSF-style; README "Compliance" documents it for the SIEM team)::

    {"activity_name":"llm.call","category_name":"Application Activity",
     "class_name":"Enclave Audit Event","time":1796620800123,
     "time_dt":"2026-12-07T05:20:00.123456Z","severity_id":1,"status":"Success",
     "status_id":1,"status_detail":"ok","actor":{"user":{"name":"alice","uid":"7"}},
     "target":{"type":"assistant.conversation","uid":"12"},"labels":["public"],
     "left_premises":true,"metadata":{"uid":"42","sequence":42,"log_name":"enclave.audit",
     "product":{"name":"Enclave","vendor_name":"Enclave"},"version":"1.3.0",
     "hash":"<64 hex>","prev_hash":"<64 hex>"},"unmapped":{"provider":"openai",...}}

What a line never carries: question or answer text, passage text, titles of
conversations, free-text details, sealed personal fields. ``unmapped`` holds only the detail keys of
SAFE_DETAILS (ids, kinds, counts, providers, models, reason codes).

Once and in order: events are read by id after the cursor, and ids commit in id order
(the append lock is held to the commit). The file is written before the cursor, so after a
crash the file's own last line is the cursor: nothing is written twice to the file and
nothing is skipped. Syslog is sent before the file: a crash between the two sends that
batch to syslog again (each line names its event in metadata.uid, for the SIEM to drop the
repeat) and never loses it. One feeder at a time (a PostgreSQL advisory lock).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections

from apps.audit.seal_sinks import SyslogSender
from apps.audit.verify import VERIFY_COLUMNS, iter_table_batches

OCSF_VERSION = "1.3.0"
# pg_try_advisory_lock key of the feeder (a session lock, released when a run ends).
SIEM_LOCK_KEY = int.from_bytes(b"encsiem!", "big") - 2**63

# Detail keys copied to `unmapped`: never free text a person wrote.
SAFE_DETAILS = (
    "where",
    "provider",
    "model",
    "trigger",
    "outcome",
    "payload_sha256",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency_ms",
    "message_id",
    "document_id",
    "collection_id",
    "label",
    "findings",
    "redactions",
    "kind",
    "format",
    "status",
)
# Target types whose name is a document or collection title, not a person's words.
NAMED_TARGETS = ("knowledge.document", "knowledge.collection")
FAILURE_OUTCOMES = ("failed", "deny", "denied", "error", "refused")
_CATEGORIES = {"auth": "Identity & Access Management", "audit": "Audit Activity"}
_COL = {name: n for n, name in enumerate(VERIFY_COLUMNS)}


def feed_path() -> Path | None:
    return Path(settings.SIEM_FEED_PATH) if settings.SIEM_FEED_PATH else None


def cursor_path() -> Path:
    configured = settings.SIEM_FEED_CURSOR
    return Path(configured) if configured else Path(settings.VAR_DIR) / "audit" / "siem.cursor"


def event_line(row: Sequence[Any], names: Mapping[int, str] | None = None) -> str:
    """One event (a row in VERIFY_COLUMNS order, time as canonical text) as a feed line.

    The actor's name comes from `names` (user id → username, as the accounts table has it
    now): the stored username may be sealed (apps/audit/personal.py), and the SIEM needs the
    name in clear. A user deleted since is named by id only.
    """

    def col(name: str) -> Any:
        return row[_COL[name]]

    action, time_text = col("action"), col("time")
    details = json.loads(col("details_json"))
    outcome = str(details.get("outcome") or "")
    failed = outcome in FAILURE_OUTCOMES or action.endswith(("failed", "locked"))
    actor: dict[str, Any]
    if col("actor_pk") is None:
        actor = {"app_name": "Enclave"}
    else:
        actor = {"user": {"uid": str(col("actor_pk"))}}
        name = (names or {}).get(col("actor_pk"))
        if name:
            actor["user"]["name"] = name
    target: dict[str, Any] = {}
    if col("target_type") or col("target_id"):
        target = {"type": col("target_type"), "uid": col("target_id")}
        if col("target_type") in NAMED_TARGETS:
            target["name"] = col("target_repr")
    unmapped: dict[str, Any] = {k: details[k] for k in SAFE_DETAILS if k in details}
    if isinstance(details.get("reasons"), list):
        unmapped["reasons"] = [r.get("code") for r in details["reasons"] if isinstance(r, dict)]
    if col("conversation_id"):
        unmapped["conversation_id"] = col("conversation_id")
    moment = datetime.fromisoformat(time_text.replace("Z", "+00:00"))
    line = {
        "activity_name": action,
        "category_name": _CATEGORIES.get(action.split(".", 1)[0], "Application Activity"),
        "class_name": "Enclave Audit Event",
        "time": int(moment.timestamp() * 1000),
        "time_dt": time_text,
        "severity_id": 1,
        "status": "Failure" if failed else "Success",
        "status_id": 2 if failed else 1,
        "status_detail": outcome,
        "actor": actor,
        "target": target,
        "labels": list(col("labels")),
        "left_premises": bool(col("left_premises")),
        "metadata": {
            "uid": str(col("id")),
            "sequence": col("id"),
            "log_name": "enclave.audit",
            "product": {"name": "Enclave", "vendor_name": "Enclave"},
            "version": OCSF_VERSION,
            "hash": col("hash"),
            "prev_hash": col("prev_hash"),
        },
        "unmapped": unmapped,
    }
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False)


def siem_feed_run(*, batch_size: int = 500, limit: int = 0, using: str = "default") -> int:
    """Write the events after the cursor; returns how many (0 when another feeder runs or
    no feed is configured)."""
    path, syslog = feed_path(), settings.SIEM_FEED_SYSLOG
    if path is None and not syslog:
        return 0
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SIEM_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return 0
    sender = SyslogSender(syslog, tag="enclave-audit") if syslog else None
    written = 0
    try:
        done = start_cursor(path)
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM audit_auditevent")
            upto = cursor.fetchone()[0]
        for rows in iter_table_batches(
            after_id=done, upto_id=upto, batch_size=batch_size, using=using
        ):
            names = usernames({row[_COL["actor_pk"]] for row in rows} - {None})
            lines = [event_line(row, names) for row in rows]
            if sender is not None:
                for line in lines:
                    sender.send(line)
            if path is not None:
                _append_lines(path, lines)
            save_cursor(rows[-1][0])
            written += len(rows)
            if limit and written >= limit:
                break
    finally:
        if sender is not None:
            sender.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SIEM_LOCK_KEY])
    return written


def usernames(pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    users = get_user_model()._default_manager
    field = get_user_model().USERNAME_FIELD
    return dict(users.filter(pk__in=pks).values_list("pk", field))


def start_cursor(path: Path | None) -> int:
    """The last event id already fed: the file's own last complete line when it has one
    (a half-written line from a crash is cut off first), else the cursor file."""
    saved = 0
    try:
        saved = int(cursor_path().read_text().strip() or 0)
    except FileNotFoundError:
        pass
    except ValueError as err:
        raise ValueError(f"{cursor_path()} does not hold an event id: {err}") from err
    if path is None or not path.exists():
        return saved
    last = _last_line(path)
    if not last:
        return saved
    try:
        fed = int(json.loads(last)["metadata"]["sequence"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"The last line of {path} is not a feed line ({err}): move the file aside and "
            "feed again from the cursor."
        ) from err
    return max(saved, fed)


def save_cursor(event_id: int) -> None:
    target = cursor_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "w") as handle:
        handle.write(f"{event_id}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def _append_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, "".join(line + "\n" for line in lines).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_line(path: Path) -> str:
    """The last complete line; a trailing partial line is truncated away."""
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        block = b""
        position = size
        while position > 0 and block.count(b"\n") < 2:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            block = handle.read(step) + block
        if block and not block.endswith(b"\n"):
            keep = block.rfind(b"\n") + 1
            handle.truncate(position + keep)
            block = block[:keep]
        lines = block.splitlines()
        return lines[-1].decode() if lines else ""


def fed_hashes(*, after: int, upto: int) -> dict[int, str]:
    """Event id → hash as the feed file recorded them, for ids in (after, upto]."""
    path = feed_path()
    found: dict[int, str] = {}
    if path is None or not path.exists():
        return found
    with open(path, encoding="utf-8") as handle:
        for text in handle:
            try:
                meta = json.loads(text)["metadata"]
                event_id = int(meta["sequence"])
            except (ValueError, KeyError, TypeError):
                continue
            if event_id > upto:
                break
            if event_id > after:
                found[event_id] = str(meta["hash"])
    return found
