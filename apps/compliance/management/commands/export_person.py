"""manage.py export_person USER [--out FILE]: everything held about a person as JSON, for a
subject access request (apps/compliance/erasure_access.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.compliance.erasure import ErasureError, person_get
from apps.compliance.erasure_access import person_export


class Command(BaseCommand):
    help = "Write everything Enclave holds about a person as JSON (GDPR Art. 15)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--out", type=Path, help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = person_get(username=options["username"])
        except ErasureError as exc:
            raise CommandError(str(exc)) from exc
        out: Path | None = options["out"]
        if out is None:
            for piece in person_export(user=user):
                sys.stdout.write(piece)
            return
        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8") as fh:
                for piece in person_export(user=user):
                    fh.write(piece)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot write {out}: {exc.strerror}") from exc
        partial.replace(out)
        self.stderr.write(f"Wrote {out}")
