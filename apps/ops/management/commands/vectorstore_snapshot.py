"""Snapshots of the Qdrant server collection: create, list, download, prune.

    manage.py vectorstore_snapshot                      # create one, print its name
    manage.py vectorstore_snapshot --download /backup   # create one and copy it here
    manage.py vectorstore_snapshot --keep 3             # create one, keep the newest 3
    manage.py vectorstore_snapshot --list
    manage.py vectorstore_snapshot --delete NAME

Only for the server backend (QDRANT_URL). A snapshot covers the shards held by the node
it is asked on: on a cluster, run it once per node with --url (README "Production").
The embedded default has no snapshot API: stop `manage.py vectorstore` and copy
VECTOR_DATA_DIR, or rebuild the points by re-ingesting the documents.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.retrieval.store.protocol import StoreError
from apps.retrieval.store.server import ServerStore


class Command(BaseCommand):
    help = "Create, list, download or prune snapshots of the Qdrant server collection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list", action="store_true", help="list snapshots and stop")
        parser.add_argument("--delete", metavar="NAME", help="delete this snapshot and stop")
        parser.add_argument(
            "--download", metavar="DIR", type=Path, help="copy the new snapshot into DIR"
        )
        parser.add_argument(
            "--keep", type=int, default=0, help="after creating, delete all but the newest N"
        )
        parser.add_argument("--url", help="a Qdrant node other than QDRANT_URL (clusters)")

    def handle(self, *args: Any, **opts: Any) -> None:
        url = opts["url"] or settings.QDRANT_URL
        if not url:
            raise CommandError(
                "Snapshots need the Qdrant server backend (QDRANT_URL). The embedded store "
                "has none: stop `manage.py vectorstore` and copy VECTOR_DATA_DIR instead."
            )
        if opts["keep"] < 0:
            raise CommandError("--keep must be 0 (keep all) or more")
        store = ServerStore(
            url=url,
            api_key=settings.QDRANT_API_KEY,
            collection=settings.QDRANT_COLLECTION,
            # Writing a snapshot of millions of points takes minutes, not seconds.
            timeout=max(settings.VECTOR_TIMEOUT_SECONDS, 3600),
        )
        try:
            self._run(store, opts)
        except StoreError as err:
            raise CommandError(str(err)) from err
        finally:
            store.close()

    def _run(self, store: ServerStore, opts: dict[str, Any]) -> None:
        if opts["list"]:
            for snap in store.snapshot_list():
                self.stdout.write(f"{snap['name']}\t{snap['created']}\t{snap['size']} bytes")
            return
        if opts["delete"]:
            store.snapshot_delete(opts["delete"])
            self.stdout.write(f"Deleted snapshot {opts['delete']}")
            return
        snap = store.snapshot_create()
        self.stdout.write(
            f"Created snapshot {snap['name']} of {store.collection} ({snap['size']} bytes)"
        )
        if opts["download"]:
            path = self._download(store, snap, opts["download"])
            self.stdout.write(f"Downloaded to {path} (SHA-256 checked)")
        if opts["keep"]:
            old = store.snapshot_list()[: -opts["keep"]]
            for gone in old:
                store.snapshot_delete(gone["name"])
                self.stdout.write(f"Deleted old snapshot {gone['name']}")

    def _download(self, store: ServerStore, snap: dict[str, Any], folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / snap["name"]
        partial = target.with_name(target.name + ".part")
        headers = {"api-key": settings.QDRANT_API_KEY} if settings.QDRANT_API_KEY else {}
        digest = hashlib.sha256()
        try:
            with (
                httpx.stream(
                    "GET",
                    store.snapshot_url(snap["name"]),
                    headers=headers,
                    timeout=httpx.Timeout(60.0, connect=10.0),
                ) as response,
                partial.open("wb") as fh,
            ):
                if response.status_code != 200:
                    raise CommandError(
                        f"the Qdrant server answered HTTP {response.status_code} to the download"
                    )
                for block in response.iter_bytes(1 << 20):
                    digest.update(block)
                    fh.write(block)
                fh.flush()
                os.fsync(fh.fileno())
        except httpx.HTTPError as err:
            partial.unlink(missing_ok=True)
            raise CommandError(f"downloading the snapshot failed ({type(err).__name__})") from err
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if snap["checksum"] and digest.hexdigest() != snap["checksum"]:
            partial.unlink(missing_ok=True)
            raise CommandError("the downloaded snapshot does not match the server's SHA-256")
        partial.replace(target)
        return target
