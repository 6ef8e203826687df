"""`manage.py vectorstore`: the one process that owns the embedded vector data.

    manage.py vectorstore              serve VECTOR_DATA_DIR on VECTOR_SOCKET until SIGTERM/^C
    manage.py vectorstore --check      exit 0 if an owner answers on the socket, 1 if not
    manage.py vectorstore --optimize   ask the running owner to build its graphs now (search
                                       goes on meanwhile); prints the build's record

Only for the embedded default; with QDRANT_URL set the vectors live on the Qdrant server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.retrieval.store.owner import GraphPolicy, run_owner
from apps.retrieval.store.protocol import StoreError
from apps.retrieval.store.socket_client import SocketStore


class Command(BaseCommand):
    help = "Own the embedded vector store (qdrant-edge) and serve it on a Unix socket."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data-dir", type=Path, help="default: VECTOR_DATA_DIR")
        parser.add_argument("--socket", type=Path, help="default: VECTOR_SOCKET")
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--check", action="store_true", help="only report whether an owner is running"
        )
        action.add_argument(
            "--optimize", action="store_true", help="ask the running owner to build its graphs"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir: Path = options["data_dir"] or Path(settings.VECTOR_DATA_DIR)
        socket_path: Path = options["socket"] or Path(settings.VECTOR_SOCKET)

        if options["check"] or options["optimize"]:
            client = SocketStore(path=socket_path, timeout=settings.VECTOR_TIMEOUT_SECONDS)
            try:
                if options["check"]:
                    info = client.ping()
                    self.stdout.write(f"vectorstore pid {info['pid']} serves {info['data_dir']}")
                else:
                    client.optimize()
                    last = client.index_state().get("last_build") or {}
                    self.stdout.write(
                        f"vectorstore graphs: {last.get('stage', 'built')}; copy "
                        f"{last.get('copy_seconds')} s, build {last.get('build_seconds')} s, "
                        f"swap {last.get('swap_seconds')} s, "
                        f"{last.get('replayed_writes', 0)} writes replayed"
                    )
            except StoreError as err:
                raise CommandError(str(err)) from err
            finally:
                client.close()
            return

        if settings.QDRANT_URL:
            raise CommandError(
                "QDRANT_URL is set, so vectors live on the Qdrant server and no "
                "vectorstore process is needed; unset QDRANT_URL to use the embedded store"
            )

        def ready(line: str) -> None:
            # Tests and `make run` wait for this exact line; stdout may be a pipe.
            self.stdout.write(line)
            self.stdout.flush()

        try:
            run_owner(
                data_dir=data_dir,
                socket_path=socket_path,
                collection=settings.QDRANT_COLLECTION,
                ready=ready,
                graphs=GraphPolicy(
                    check_seconds=settings.VECTOR_GRAPH_CHECK_SECONDS,
                    every_points=settings.VECTOR_GRAPH_EVERY_POINTS,
                    retry_seconds=settings.VECTOR_GRAPH_RETRY_SECONDS,
                    exact_search_points=settings.VECTOR_EXACT_SEARCH_POINTS,
                    flush_seconds=settings.VECTOR_FLUSH_SECONDS,
                ),
            )
        except StoreError as err:
            raise CommandError(str(err)) from err
