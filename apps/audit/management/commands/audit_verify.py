"""manage.py audit_verify: walk the hash chain and say whether it holds.

Exit status 0 when intact, 1 when a link is broken (the first broken event is named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.archive import CheckpointError, load_checkpoint, verify_archive
from apps.audit.verify import verify_chain
from apps.core.migrations_check import require_migrated


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain (streams; bounded memory)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from-checkpoint",
            type=Path,
            metavar="PATH",
            help="start after the events a signed checkpoint (from audit_export) covers",
        )
        parser.add_argument(
            "--archive",
            type=Path,
            metavar="PATH",
            help="verify an archive file from audit_export against its checkpoint instead",
        )
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["archive"]:  # an archive is checked without the database
            require_migrated()
        batch = max(1, options["batch_size"])
        try:
            if options["archive"]:
                report = verify_archive(archive=options["archive"], batch_size=batch)
            elif options["from_checkpoint"]:
                cp = load_checkpoint(options["from_checkpoint"])
                report = verify_chain(
                    start_after=cp.last_id, start_hash=cp.last_hash, batch_size=batch
                )
            else:
                report = verify_chain(batch_size=batch)
        except (CheckpointError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if not report.intact:
            raise CommandError(report.summary(), returncode=1)
        self.stdout.write(report.summary())
