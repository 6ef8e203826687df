"""`manage.py adapt_embedder`: fine-tune the active embedder on the company's own corpus.

    manage.py adapt_embedder                          # every collection, at most 30 minutes
    manage.py adapt_embedder --collection Handbook --name handbook-1 --reindex

1. Reads the indexed chunks of the collections back from the store.
2. Makes pseudo-queries from them (apps/retrieval/adapt.py: headings paired with their
   passages, sentences paired with the rest of their passage); no user question is read.
3. Trains the active embedder on them with in-batch negatives, on the CPU, stopping at
   --max-minutes whatever the step, with a progress bar.
4. Saves the model under EMBEDDERS_DIR/<name> and registers it as a new embedder version
   (README "Retrieval": embedder versions), recording what it was trained on. With
   --reindex the blue/green re-index starts at once; the active index serves until an
   admin activates the new one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.core.migrations_check import require_migrated
from apps.knowledge.models import Collection
from apps.retrieval.adapt import pseudo_pairs, train
from apps.retrieval.store.protocol import StoreError
from apps.retrieval.versions import (
    VersionError,
    active_version,
    model_dir,
    register_version,
    start_reindex,
)
from apps.search.adaptation import stored_passages


class Command(BaseCommand):
    help = "Fine-tune the embedder on pseudo-queries made from the indexed corpus."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--collection", action="append", default=[], help="name; repeatable")
        parser.add_argument("--name", help="the new version's name (default adapted-<time>)")
        parser.add_argument("--max-minutes", type=float, default=30.0)
        parser.add_argument("--max-pairs", type=int, default=4096)
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--reindex", action="store_true", help="start the re-index")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        collections = Collection.objects.all()
        if options["collection"]:
            collections = collections.filter(name__in=options["collection"])
            missing = set(options["collection"]) - set(collections.values_list("name", flat=True))
            if missing:
                raise CommandError(f"no collection named {', '.join(sorted(missing))}")
        ids = list(collections.values_list("pk", flat=True))
        name = options["name"] or f"adapted-{timezone.now():%Y%m%d-%H%M}"
        base = active_version()
        out: Path = model_dir(name)
        if out.exists():
            raise CommandError(f"{out} exists already: choose another --name")
        try:
            passages = list(stored_passages(ids))
        except StoreError as err:
            raise CommandError(f"the vector store cannot be read: {err}") from err
        pairs = pseudo_pairs(passages, max_pairs=options["max_pairs"])
        self.stdout.write(
            f"{len(passages)} passages of {len(ids)} collection(s) → {len(pairs)} training "
            f"pairs; base {base.name}; at most {options['max_minutes']:g} minutes"
        )
        started = time.monotonic()
        try:
            report = train(
                pairs,
                base_path=base.model_path,
                out_dir=out,
                epochs=options["epochs"],
                batch_size=options["batch_size"],
                max_seconds=options["max_minutes"] * 60,
                threads=settings.EMBEDDING_THREADS or None,
                progress=not options["no_progress"],
                log=self.stdout.write,
            )
        except ValueError as err:
            raise CommandError(str(err)) from err
        trained_on = {
            "collections": sorted(collections.values_list("name", flat=True)),
            "passages": len(passages),
            "recipe": "headings→passages + sentence→rest (inverse cloze), in-batch negatives",
            **report.as_dict(),
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        try:
            version = register_version(name=name, path=str(out), base=base, trained_on=trained_on)
            self.stdout.write(f"registered embedder version {version.name} ({out})")
            if options["reindex"]:
                start_reindex(version)
        except VersionError as err:
            raise CommandError(str(err)) from err
        if options["reindex"]:
            self.stdout.write(
                f"re-index started; `manage.py embedder activate {version.name}` switches "
                "once it is ready"
            )
