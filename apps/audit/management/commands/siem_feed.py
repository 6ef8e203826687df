"""manage.py siem_feed: write the audit events not yet fed to SIEM_FEED_PATH / syslog.

Once by default (Celery beat runs it every SIEM_FEED_INTERVAL_SECONDS); --follow keeps
going. Restarting neither repeats nor skips an event (apps/audit/siem.py).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.seal_sinks import SinkError
from apps.audit.siem import cursor_path, feed_path, siem_feed_run
from apps.core.migrations_check import require_migrated


class Command(BaseCommand):
    help = "Feed the audit events after the cursor to the SIEM (file and/or syslog)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--follow", action="store_true", help="keep feeding new events")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        if feed_path() is None and not settings.SIEM_FEED_SYSLOG:
            raise CommandError(
                "No SIEM feed is configured: set SIEM_FEED_PATH or SIEM_FEED_SYSLOG."
            )
        require_migrated()
        while True:
            try:
                written = siem_feed_run(batch_size=max(1, options["batch_size"]))
            except (SinkError, OSError, ValueError) as exc:
                raise CommandError(str(exc), returncode=1) from exc
            if written or not options["follow"]:
                self.stdout.write(f"Fed {written} events (cursor {cursor_path()}).")
            if not options["follow"]:
                return
            time.sleep(settings.SIEM_FEED_INTERVAL_SECONDS if not written else 0)
