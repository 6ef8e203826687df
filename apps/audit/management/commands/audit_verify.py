"""manage.py audit_verify: walk the hash chain and check it against the latest seal.

Exit status 0 when intact, 1 when a link is broken or the chain disagrees with its seals
(the first differing event is named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.archive import CheckpointError, load_checkpoint, verify_archive
from apps.audit.chain import GENESIS_HASH
from apps.audit.seal_keys import SealKeyError
from apps.audit.seal_verify import verify_sealed
from apps.audit.verify import verify_chain
from apps.core.migrations_check import require_migrated


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain against its seals (streams; bounded memory)."

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
        parser.add_argument(
            "--without-seals",
            action="store_true",
            help="walk the links only, without checking the seals (as before seals existed)",
        )
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["archive"]:  # an archive is checked without the database
            require_migrated()
        batch = max(1, options["batch_size"])
        try:
            if options["archive"]:
                report: Any = verify_archive(archive=options["archive"], batch_size=batch)
            else:
                start_after, start_hash = 0, GENESIS_HASH
                if options["from_checkpoint"]:
                    cp = load_checkpoint(options["from_checkpoint"])
                    start_after, start_hash = cp.last_id, cp.last_hash
                walk = verify_chain if options["without_seals"] else verify_sealed
                report = walk(start_after=start_after, start_hash=start_hash, batch_size=batch)
        except (CheckpointError, SealKeyError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if not report.intact:
            raise CommandError(report.summary(), returncode=1)
        self.stdout.write(report.summary())
