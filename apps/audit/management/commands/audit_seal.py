"""manage.py audit_seal: seal the chain head now (Celery beat does it on a schedule).

Exit status 0 when the seal was stored (a copy a further sink refused is reported on
stderr), 1 when no seal could be made (the chain does not hold since the last seal, the
store was tampered with, no key).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.seal import SealError, audit_seal
from apps.audit.seal_keys import (
    SealKeyError,
    generate_key_file,
    key_id,
    key_path,
    public_hex,
)
from apps.audit.seal_sinks import SinkError
from apps.core.migrations_check import require_migrated


class Command(BaseCommand):
    help = "Seal the audit chain's head: sign its last id and hash and store the seal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--generate-key",
            action="store_true",
            help="create a new Ed25519 seal key at AUDIT_SEAL_KEY_FILE (never overwrites) "
            "and print its public key",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate_key"]:
            path = key_path()
            try:
                key = generate_key_file(path)
            except FileExistsError as exc:
                raise CommandError(f"{path} exists already; it is never overwritten.") from exc
            except OSError as exc:
                raise CommandError(f"{path}: {exc}") from exc
            public = key.public_key()
            self.stdout.write(
                f"Seal key written to {path} (mode 0600).\n"
                f"  key id: {key_id(public)}\n"
                f"  public key (AUDIT_SEAL_PUBLIC_KEY for verifiers): {public_hex(public)}"
            )
            return
        require_migrated()
        try:
            result = audit_seal()
        except (SealError, SealKeyError, SinkError, OSError) as exc:
            raise CommandError(str(exc), returncode=1) from exc
        seal = result.seal
        self.stdout.write(
            f"Sealed: {seal}, last hash {seal.last_hash}, {seal.count} events; "
            f"stored in {result.stored_at}"
        )
        for error in result.sink_errors:
            self.stderr.write(f"not copied: {error}")
