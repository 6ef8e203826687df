"""A synced folder's re-sync against a full re-ingest (issue 16).

    .venv/bin/python bench/sync.py [--files 1000] [--changed 0.10] [--deleted 0.05] [--runs 3]

Each run builds a folder of `--files` text files (each its own paragraph), syncs it into a
fresh collection and waits until every file is indexed: that is the full ingest, the
baseline. Then `--changed` of the files get new content and `--deleted` are removed, and
the folder is synced again until the new versions are indexed: the re-sync. It counts the
files embedded in the re-sync (document.indexed events; only the changed ones should be)
and prints the re-sync's time, the full ingest's, and their ratio, per run and as a range.
A real Celery worker and vector store owner, a throw-away database (`enclave_bench_sync`);
the machine is shared and noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from common import isolate, note_text, prepare_database  # noqa: E402 - bench/ is on sys.path

DB_NAME = "enclave_bench_sync"
BROKER = "redis://127.0.0.1:6379/12"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--changed", type=float, default=0.10)
    parser.add_argument("--deleted", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="enclave-bench-sync-"))
    os.environ["SOURCE_ROOTS"] = str(var / "sources")
    isolate(db_url=prepare_database(DB_NAME), var=var, broker=BROKER)
    import redis
    from django.conf import settings

    from apps.audit.models import AuditEvent
    from apps.knowledge import services
    from apps.knowledge.models import Document, Source, SyncRun
    from apps.knowledge.sync import source_sync
    from tests.support.vectorstore import start_vectorstore, stop_vectorstore
    from tests.support.worker import kill_worker, start_worker

    redis.Redis.from_url(BROKER).flushdb()
    env = {**os.environ}
    store_proc = start_vectorstore(var / "vectors", var / "vs.sock", env=env)
    concurrency = settings.CELERY_WORKER_CONCURRENCY
    worker = start_worker(env=env, log=var / "worker.log", name="bench", concurrency=concurrency)
    results: list[tuple[float, float, int, int]] = []
    try:
        for run in range(args.runs):
            rng = random.Random(run)
            folder = var / "sources" / f"run{run}"
            folder.mkdir(parents=True)
            for n in range(args.files):
                (folder / f"note-{n:05d}.md").write_text(note_text(rng, n), encoding="utf-8")
            stamp = f"{int(time.time())}-{run}"
            collection = services.collection_create(name=f"bench-sync-{stamp}", actor=None)
            source = Source.objects.create(
                name=f"bench-{stamp}", collection=collection, path=str(folder)
            )
            if run == 0:  # the worker loads its model outside the timed part
                warm = folder.parent / f"warm{run}"
                warm.mkdir()
                (warm / "warm.md").write_text("warm up the worker", encoding="utf-8")
                warm_source = Source.objects.create(
                    name=f"warm-{stamp}", collection=collection, path=str(warm)
                )
                source_sync(source=warm_source, trigger=SyncRun.Trigger.COMMAND)
                _wait(Document.objects.filter(source=warm_source))

            started = time.perf_counter()
            first = source_sync(source=source, trigger=SyncRun.Trigger.COMMAND)
            _wait(Document.objects.filter(source=source))
            full_s = time.perf_counter() - started

            names = sorted(p.name for p in folder.iterdir())
            rng.shuffle(names)
            n_changed = round(args.files * args.changed)
            n_deleted = round(args.files * args.deleted)
            for i, name in enumerate(names[:n_changed]):
                (folder / name).write_text(note_text(rng, 100_000 + i), encoding="utf-8")
            for name in names[n_changed : n_changed + n_deleted]:
                (folder / name).unlink()
            indexed_before = AuditEvent.objects.filter(action="document.indexed").count()

            started = time.perf_counter()
            second = source_sync(source=source, trigger=SyncRun.Trigger.COMMAND)
            _wait(Document.objects.filter(source=source, superseded_at__isnull=True))
            _wait_superseded(Document.objects.filter(source=source, version=2).count(), source)
            resync_s = time.perf_counter() - started
            embedded = AuditEvent.objects.filter(action="document.indexed").count() - indexed_before
            print(
                f"run {run + 1}: full ingest of {first.added} files {full_s:.1f} s; re-sync "
                f"({second.updated} changed, {second.removed} deleted, {second.unchanged} "
                f"unchanged) {resync_s:.1f} s, {embedded} files embedded; "
                f"ratio re-sync/full {resync_s / full_s:.3f}"
            )
            results.append((full_s, resync_s, embedded, n_changed))
    finally:
        kill_worker(worker)
        stop_vectorstore(store_proc)
    ratios = [r / f for f, r, _, _ in results]
    print(f"worker pool processes: {concurrency}; files {args.files}, runs {len(results)}")
    print(
        f"full ingest {min(f for f, *_ in results):.1f}-{max(f for f, *_ in results):.1f} s; "
        f"re-sync {min(r for _, r, *_ in results):.1f}-{max(r for _, r, *_ in results):.1f} s; "
        f"ratio {min(ratios):.3f}-{max(ratios):.3f}"
    )
    exact = all(e == c for _, _, e, c in results)
    print(f"only the changed files were embedded again: {'yes' if exact else 'NO'}")


def _wait(docs) -> None:  # noqa: ANN001 - a QuerySet of Document
    while docs.exclude(status__in=("indexed", "failed")).exists():
        time.sleep(0.2)


def _wait_superseded(expected: int, source) -> None:  # noqa: ANN001 - a Source
    """The re-sync is over when every replaced version has lost its points."""
    from apps.knowledge.models import Document

    while Document.objects.filter(source=source, superseded_at__isnull=False).count() < expected:
        time.sleep(0.2)


if __name__ == "__main__":
    main()
