"""Ingestion throughput: the whole pipeline through Celery vs raw SentenceTransformer.encode.

    .venv/bin/python bench/ingest.py [--corpus ../shared/eval/celerydocs/corpus.jsonl] [--limit N]
    .venv/bin/python bench/ingest.py --synthetic 10000      # bulk load of small documents

Every corpus entry becomes one uploaded document (title kept) in a throw-away collection of
a throw-away database (`enclave_bench`), ingested by a real Celery worker into a real
vector store owner process. In the same run the same chunk texts are embedded with a bare
`SentenceTransformer.encode` (batch 32, after a warm-up), and the ratio of the two rates is
printed. Both use the same 2 cores, so the ratio is what the pipeline costs on top of the
model (goal: >= 0.80). The machine is shared and noisy: compare ratios, not seconds.

`--synthetic N` writes N small generated documents (a heading and 60 words each, all
different) into a folder and loads it with `manage.py ingest_dir` instead, the path the
bulk-loading case takes, timed from the command's start to its last document indexed.
Throughout, the worker's RSS (the Celery main process and its pool children together) is
sampled with the count of indexed documents, and printed at 1,000 indexed documents and at
the end: a pipeline that keeps nothing per document stays flat after the first thousand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, isolate, note_text, prepare_database, tree_rss  # noqa: E402 - bench/ is on sys.path

DB_NAME = "enclave_bench"
BROKER = "redis://127.0.0.1:6379/13"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=ROOT.parent / "shared/eval/celerydocs/corpus.jsonl"
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N entries")
    parser.add_argument(
        "--synthetic", type=int, default=0, help="N generated small documents instead"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="worker pool processes (default: CELERY_WORKER_CONCURRENCY, as `make run` uses)",
    )
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="enclave-bench-"))
    isolate(db_url=prepare_database(DB_NAME), var=var, broker=BROKER)
    import redis
    from django.contrib.auth.models import Group
    from django.core.files.base import ContentFile

    from apps.knowledge import ingestion, services
    from apps.knowledge.models import Document
    from apps.knowledge.points import embedding_text
    from apps.retrieval.embeddings import get_model
    from tests.support.vectorstore import start_vectorstore, stop_vectorstore
    from tests.support.worker import kill_worker, start_worker

    redis.Redis.from_url(BROKER).flushdb()
    if args.synthetic:
        entries = _synthetic(args.synthetic)
    else:
        entries = [json.loads(line) for line in args.corpus.open()]
    if args.limit:
        entries = entries[: args.limit]

    # The baseline's texts: the same chunks the worker will make, by the same function,
    # from the same bytes (a repeated passage is refused at upload, so it is left out).
    files = var / "corpus"
    files.mkdir()
    texts, seen = [], set()
    for entry in entries:
        body = entry["text"].encode()
        if body in seen:
            continue
        seen.add(body)
        path = files / f"{len(seen)}.txt"
        path.write_bytes(body)
        _, doc_chunks = ingestion.document_chunks(path=path)
        title = entry.get("title") or entry["_id"]
        texts += [embedding_text(title=title, section=c.section, text=c.text) for c in doc_chunks]
    model = get_model()
    import torch

    # The baseline gets every core, as the worker's pool processes do together.
    torch.set_num_threads(os.cpu_count() or 1)
    model.encode(texts[:64], batch_size=32)

    def raw_seconds() -> float:
        started = time.perf_counter()
        model.encode(texts, batch_size=32, normalize_embeddings=True)
        return time.perf_counter() - started

    # Timed before and after the pipeline; the faster run is the baseline, so noise from
    # other work on the machine can only make the ratio look worse, never better.
    raw_before = raw_seconds()

    env = {**os.environ}
    store_proc = start_vectorstore(var / "vectors", var / "vs.sock", env=env)
    from django.conf import settings

    concurrency = args.concurrency or settings.CELERY_WORKER_CONCURRENCY
    worker = start_worker(env=env, log=var / "worker.log", name="bench", concurrency=concurrency)
    try:
        name = f"bench-{int(time.time())}"
        collection = services.collection_create(
            name=name, actor=None, groups=[Group.objects.get_or_create(name="bench")[0]]
        )
        # Warm the worker (model load) outside the timed part, like the baseline's warm-up.
        warm, _ = services.document_create(
            collection=collection,
            upload=ContentFile(b"warm up the worker", name="warm.txt"),
            user=None,
        )
        _wait([warm.pk], Document)
        if args.synthetic:
            _note_files(entries, var / "bulk")
        sampler = _RssSampler(worker.pid, collection.pk)
        sampler.start()
        started = time.perf_counter()
        ids = []
        skipped = 0
        if args.synthetic:
            ids, skipped = _ingest_dir(var / "bulk", collection)
        for entry in entries if not args.synthetic else ():
            body = entry["text"].encode()
            try:
                doc, _ = services.document_create(
                    collection=collection,
                    upload=ContentFile(body, name=f"{entry['_id'].replace('/', '_')}.txt"),
                    user=None,
                    title=entry.get("title") or entry["_id"],
                )
            except services.UploadRejected:
                skipped += 1  # the corpus repeats some passages word for word
                continue
            ids.append(doc.pk)
        _wait(ids, Document)
        pipeline_s = time.perf_counter() - started
        sampler.stop()
        docs = Document.objects.filter(pk__in=ids)
        chunks = sum(d.chunk_count for d in docs)
        failed = docs.filter(status=Document.Status.FAILED).count()
    finally:
        kill_worker(worker)
        stop_vectorstore(store_proc)
    raw_after = raw_seconds()
    raw_s = min(raw_before, raw_after)

    pipeline_rate = chunks / pipeline_s
    raw_rate = len(texts) / raw_s
    print(f"worker pool processes: {concurrency}")
    print(
        f"documents: {len(ids)} ({failed} failed, {skipped} duplicates skipped), chunks: {chunks} "
        f"(baseline texts: {len(texts)})"
    )
    print(
        f"pipeline (upload -> Celery -> parse -> chunk -> embed -> upsert): "
        f"{pipeline_rate:.1f} chunks/s ({pipeline_s:.1f} s)"
    )
    print(
        f"raw SentenceTransformer.encode, batch 32, all cores: {raw_rate:.1f} chunks/s "
        f"(best of {raw_before:.1f} s before and {raw_after:.1f} s after)"
    )
    print(f"ratio pipeline/raw: {pipeline_rate / raw_rate:.2f} (goal >= 0.80)")
    print(sampler.report())


def _note_files(entries: list[dict[str, str]], folder: Path) -> None:
    """The entries as files of one folder, each named so that the title ingest_dir gives
    it is the entry's ("Note_7.txt" is "Note 7")."""
    folder.mkdir()
    for entry in entries:
        (folder / f"{entry['title'].replace(' ', '_')}.txt").write_text(entry["text"])


def _ingest_dir(folder: Path, collection) -> tuple[list[int], int]:  # noqa: ANN001
    """`manage.py ingest_dir` over the folder, which waits for its last document;
    (document ids, files refused)."""
    import io

    from django.core.management import call_command

    from apps.knowledge.models import Document

    call_command("ingest_dir", str(folder), collection=collection.name, stdout=io.StringIO())
    names = [path.name for path in folder.iterdir()]
    docs = Document.objects.filter(collection=collection, original_name__in=names)
    ids = list(docs.values_list("pk", flat=True))
    return ids, len(names) - len(ids)


def _synthetic(n: int) -> list[dict[str, str]]:
    rng = random.Random(7)
    return [{"_id": f"note-{i}", "title": f"Note {i}", "text": note_text(rng, i)} for i in range(n)]


class _RssSampler(threading.Thread):
    """(indexed documents of the collection, worker RSS in bytes) every half second."""

    def __init__(self, pid: int, collection_id: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.collection_id = pid, collection_id
        self.samples: list[tuple[int, int]] = []
        self._done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from apps.knowledge.models import Document

        try:
            while not self._done.wait(0.5):
                rss = tree_rss(self.pid)
                indexed = Document.objects.filter(
                    collection_id=self.collection_id, status=Document.Status.INDEXED
                ).count()
                self.samples.append((indexed, rss))
        finally:
            connection.close()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def report(self) -> str:
        if not self.samples:
            return "worker RSS: no samples"
        mib = 1024 * 1024
        first = next((r for n, r in self.samples if n >= 1000), None)
        last, peak = self.samples[-1][1], max(r for _, r in self.samples)
        line = f"worker RSS (main + pool): end {last / mib:.0f} MiB, peak {peak / mib:.0f} MiB"
        if first is None:
            return line + " (fewer than 1,000 documents: no growth figure)"
        grown = max(r for n, r in self.samples if n >= 1000)
        # Where it stood further on, to tell a step early on from a steady climb.
        marks = [
            f"at {mark:,} {rss / mib:.0f} MiB"
            for mark in (2000, 5000, 8000)
            if (rss := next((r for n, r in self.samples if n >= mark), None)) is not None
        ]
        return (
            f"{line}; at 1,000 indexed {first / mib:.0f} MiB, highest after that "
            f"{grown / mib:.0f} MiB (ratio {grown / first:.2f}; flat is 1.00)"
            + (f"; {', '.join(marks)}" if marks else "")
        )


def _wait(ids: list[int], document_model) -> None:  # noqa: ANN001
    done = ("indexed", "failed")
    while document_model.objects.filter(pk__in=ids).exclude(status__in=done).exists():
        time.sleep(0.2)


if __name__ == "__main__":
    main()
