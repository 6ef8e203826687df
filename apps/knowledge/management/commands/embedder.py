"""`manage.py embedder`: the embedder versions and their blue/green re-index.

manage.py embedder list                 # versions, states, point counts, training
manage.py embedder register NAME PATH   # a model directory as a new (ready) version
manage.py embedder reindex NAME         # build NAME's points while the active one serves
manage.py embedder activate NAME        # switch queries to NAME (must be ready)
manage.py embedder drop NAME            # delete a version that is not active, and its points
manage.py embedder backfill             # tag points from before versions (also at worker start)
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.migrations_check import require_migrated
from apps.knowledge.reindex import embedder_backfill
from apps.retrieval import versions
from apps.retrieval.models import EmbedderVersion
from apps.retrieval.store.protocol import StoreError


class Command(BaseCommand):
    help = "List, re-index, activate and drop embedder versions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        register = sub.add_parser("register")
        register.add_argument("name")
        register.add_argument("path")
        for action in ("reindex", "activate", "drop"):
            sub.add_parser(action).add_argument("name")
        sub.add_parser("backfill")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        action = options["action"]
        try:
            if action == "list":
                self._list()
            elif action == "backfill":
                self.stdout.write(f"tagged {embedder_backfill()} points")
            elif action == "register":
                version = versions.register_version(
                    name=options["name"],
                    path=options["path"],
                    base=versions.active_version(),
                    trained_on={"registered": "by hand (manage.py embedder register)"},
                )
                self.stdout.write(f"registered {version.name}; `embedder reindex` builds it")
            else:
                version = versions.get_version(options["name"])
                if action == "reindex":
                    versions.start_reindex(version)
                    self.stdout.write(f"re-index of {version.name} sent to the workers")
                elif action == "activate":
                    versions.activate(version, None)
                    self.stdout.write(f"{version.name} answers queries now")
                else:
                    versions.drop(version, None)
                    self.stdout.write(f"dropped {version.name} and its points")
        except (versions.VersionError, StoreError, RuntimeError) as err:
            raise CommandError(str(err)) from err

    def _list(self) -> None:
        for v in EmbedderVersion.objects.select_related("base"):
            try:
                points = str(versions.point_count(v))
            except StoreError as err:
                points = f"? ({err})"
            self.stdout.write(
                f"{v.name:24} {v.state:9} points {points:>8}  path {v.path or '(packaged MiniLM)'}"
                f"  base {v.base.name if v.base else '-'}"
            )
            if v.trained_on:
                self.stdout.write(f"    trained on {json.dumps(v.trained_on, sort_keys=True)}")
            if v.state == EmbedderVersion.State.BUILDING and v.progress:
                self.stdout.write(f"    progress {json.dumps(v.progress, sort_keys=True)}")
