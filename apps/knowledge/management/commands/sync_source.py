"""`manage.py sync_source NAME`: sync one synced folder now, with a progress bar, and
print its report (the same sync as beat's and the admin's "Sync now")."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.core.migrations_check import require_migrated
from apps.knowledge.models import Source, SyncRun
from apps.knowledge.sync import source_sync


class Command(BaseCommand):
    help = "Sync a source's folder into its collection now (new, changed and removed files)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("name", help="the source's name (see /knowledge/sources/)")

    def handle(self, *args: object, **options: object) -> None:
        require_migrated()
        name = str(options["name"])
        source = Source.objects.filter(name=name).first()
        if source is None:
            known = ", ".join(Source.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"no source named {name!r} (sources: {known})")
        self.stderr.write(f"Waiting for any other sync of {name} to finish …")
        with tqdm(desc=f"sync {name}", unit="file", file=self.stderr) as bar:

            def progress(done: int, total: int, _path: str) -> None:
                bar.total = total
                bar.update(done - bar.n)

            run = source_sync(source=source, trigger=SyncRun.Trigger.COMMAND, progress=progress)
        self.stdout.write(
            f"{run.get_status_display()}: {run.files_seen} files; {run.added} added, "
            f"{run.updated} updated, {run.removed} removed, {run.unchanged} unchanged, "
            f"{len(run.failures)} failed."
        )
        for failure in run.failures:
            self.stdout.write(f"  failed {failure['path']}: {failure['reason']}")
        if run.status == SyncRun.Status.FAILED:
            raise CommandError(run.error)
        if run.added or run.updated:
            self.stdout.write(
                "New and changed files are queued for ingestion; the upload page follows them."
            )
