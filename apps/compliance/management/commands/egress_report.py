"""manage.py egress_report --from DATE --to DATE: the signed egress attestation of a period.

Prints the statement and the totals; --out writes the signed JSON report. Exit status 0
when the report attests, 1 when it does not (the statement says why: a broken chain, no
seal, or calls that broke the egress rule). --verify checks a saved report's signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.seal_keys import SealKeyError
from apps.compliance.egress_report import Period, PeriodError
from apps.compliance.egress_statement import egress_report_create, report_signature_valid
from apps.core.migrations_check import require_migrated


class Command(BaseCommand):
    help = "Report every answer that left the premises in a period, as a signed statement."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="first", metavar="DATE", help="first day, YYYY-MM-DD (UTC)"
        )
        parser.add_argument("--to", dest="last", metavar="DATE", help="last day, included")
        parser.add_argument("--out", type=Path, metavar="PATH", help="write the signed JSON here")
        parser.add_argument("--verify", type=Path, metavar="PATH", help="check a saved report")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["verify"]:
                return self._verify(options["verify"])
            if not options["first"] or not options["last"]:
                raise CommandError("Give the period: --from YYYY-MM-DD --to YYYY-MM-DD.")
            require_migrated()
            report = egress_report_create(
                period=Period.parse(options["first"], options["last"]), actor=None
            )
        except (PeriodError, SealKeyError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if options["out"]:
            options["out"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        totals = report["totals"]
        self.stdout.write(report["statement"])
        self.stdout.write(
            f"  sent: {totals['calls']} calls, {totals['prompt_tokens']} prompt and "
            f"{totals['completion_tokens']} completion tokens, cost {totals['cost']}; "
            f"denied escalations: {len(report['denied'])}"
        )
        for row in totals["by_provider"]:
            self.stdout.write(f"  {row['provider']}: {row['calls']} calls, cost {row['cost']}")
        if options["out"]:
            self.stdout.write(f"  signed report: {options['out']}")
        if not report["attested"]:
            raise CommandError("The report does not attest (see the statement).", returncode=1)

    def _verify(self, path: Path) -> None:
        try:
            report = json.loads(path.read_text())
        except ValueError as exc:
            raise CommandError(f"{path} is not a JSON report: {exc}") from exc
        if not isinstance(report, dict) or not report_signature_valid(report):
            raise CommandError(
                f"{path}: the signature does not match (altered, or signed with another key).",
                returncode=1,
            )
        self.stdout.write(f"{path}: signature valid. {report.get('statement', '')}")
