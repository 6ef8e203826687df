"""manage.py audit_export --before DATE --out PATH: archive old events with a checkpoint.

Writes PATH (JSON lines, one event per line with its hash) and PATH.checkpoint.json
(signed with AUDIT_CHECKPOINT_KEY, or SECRET_KEY when unset). Nothing is deleted; the
export itself is recorded in the trail as an audit.exported event.
"""

from __future__ import annotations

import getpass
from datetime import datetime, time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.audit.archive import checkpoint_path_for, write_archive
from apps.audit.services import audit_record
from apps.core.migrations_check import require_migrated


def parse_moment(value: str) -> datetime:
    """An ISO date (its midnight) or datetime; naive values are in TIME_ZONE."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(f"not an ISO date or datetime: {value!r}")
        moment = datetime.combine(day, time.min)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Write events before DATE to an archive (JSON lines) plus a signed checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", required=True, metavar="DATE")
        parser.add_argument("--out", required=True, type=Path, metavar="PATH")
        parser.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        try:
            before = parse_moment(options["before"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        out: Path = options["out"]
        if not options["force"] and (out.exists() or checkpoint_path_for(out).exists()):
            raise CommandError(f"{out} or its checkpoint exists; pass --force to overwrite")
        try:
            checkpoint = write_archive(
                before=before, out=out, batch_size=max(1, options["batch_size"])
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        with transaction.atomic():
            audit_record(
                actor=None,
                action="audit.exported",
                target=str(out.name),
                details={
                    "kind": "archive",
                    "via": "manage.py audit_export",
                    "os_user": _os_user(),
                    "filter": {"end": checkpoint.before},
                    "count": checkpoint.count,
                    "first_id": checkpoint.first_id,
                    "last_id": checkpoint.last_id,
                    "last_hash": checkpoint.last_hash,
                    "archive_sha256": checkpoint.archive_sha256,
                },
            )
        self.stdout.write(
            f"Archived {checkpoint.count} events (#{checkpoint.first_id}..#{checkpoint.last_id}, "
            f"before {checkpoint.before}) to {out}\n"
            f"Checkpoint: {checkpoint_path_for(out)} (last hash {checkpoint.last_hash}, "
            f"signed with {checkpoint.key_name})"
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
