"""Bulk load: `manage.py ingest_dir PATH --collection NAME [--label L]`."""

import time
from contextlib import ExitStack
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.core.labels import Label
from apps.core.migrations_check import require_migrated
from apps.knowledge import bulk_uploads
from apps.knowledge.dispatch import INGEST_BATCH_DOCUMENTS, ingest_enqueue_many
from apps.knowledge.models import Collection, Document

# How many of the unfinished documents each look of the progress bar asks about.
FOLLOW_WINDOW = 256


class Command(BaseCommand):
    help = "Upload every file under PATH into a collection and follow ingestion to the end."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("path", type=Path)
        parser.add_argument("--collection", required=True)
        parser.add_argument("--label", choices=Label.values)
        parser.add_argument("--user", help="record this username as the uploader")
        parser.add_argument("--no-wait", action="store_true", help="queue and return at once")

    def handle(self, *args: object, **options: object) -> None:
        require_migrated()
        root: Path = options["path"]  # type: ignore[assignment]
        if not root.exists():
            raise CommandError(f"{root} does not exist")
        try:
            collection = Collection.objects.get(name=options["collection"])
        except Collection.DoesNotExist:
            raise CommandError(f"no collection named {options['collection']!r}") from None
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user named {options['user']!r}")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        ids: list[int] = []
        rejected = 0
        label = str(options["label"]) if options["label"] else None
        with tqdm(total=len(files), desc="upload", unit="file") as bar:
            # Stored and sent INGEST_BATCH_DOCUMENTS files at a time: one commit each, the
            # small files of each in one task (dispatch.ingest_enqueue_many), and the
            # workers start while the rest is still being stored.
            for start in range(0, len(files), INGEST_BATCH_DOCUMENTS):
                group = files[start : start + INGEST_BATCH_DOCUMENTS]
                with ExitStack() as stack:
                    uploads = [File(stack.enter_context(p.open("rb")), name=p.name) for p in group]
                    stored, refused = bulk_uploads.documents_create(
                        collection=collection, uploads=uploads, user=user, label=label
                    )
                for index, err in refused:
                    tqdm.write(f"refused {group[index]}: {err}")
                rejected += len(refused)
                ids += [doc.pk for doc in stored]
                if stored and not (sent := ingest_enqueue_many(documents=stored)).queued:
                    tqdm.write(sent.message)
                bar.update(len(group))
        if options["no_wait"] or not ids:
            self.stdout.write(f"{len(ids)} queued, {rejected} refused")
            return
        self._follow(ids)
        failed = Document.objects.filter(pk__in=ids, status=Document.Status.FAILED)
        for doc in failed:
            self.stdout.write(f"failed {doc.original_name}: {doc.failure_reason}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(ids) - failed.count()} indexed, {failed.count()} failed, {rejected} refused"
            )
        )

    def _follow(self, ids: list[int]) -> None:
        """Until every document is indexed or failed. Each look asks only about the oldest
        FOLLOW_WINDOW unfinished ones, which a bulk load finishes first: asking about all
        10,000 ids every half second cost 135 ms each time (README "Capacity")."""
        done_states = (Document.Status.INDEXED, Document.Status.FAILED)
        remaining = sorted(ids)
        with tqdm(total=len(ids), desc="ingest", unit="doc") as bar:
            while remaining:
                head = remaining[:FOLLOW_WINDOW]
                finished = set(
                    Document.objects.filter(pk__in=head, status__in=done_states).values_list(
                        "pk", flat=True
                    )
                )
                if finished:
                    remaining = [pk for pk in remaining if pk not in finished]
                    bar.update(len(finished))
                if len(finished) < len(head):
                    time.sleep(0.5)
