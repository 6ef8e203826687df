"""The ingestion pipeline: one document from its stored file to its points.

    queued → claim → parse → chunk → embed and upsert → finish → indexed
                       └───────┴─ a sentence for a person ─→ failed

Each stage is a small function over one `Ingestion` (what the stages hand each other)
and says whether the run goes on; `document_ingest` runs them in order. A document the
pipeline cannot read fails with a sentence (ParseError); a vector store that is down is
transient (TransientIngestError), and the task decides when to retry and when to give
up (workers/ingest.py). The stale-job reaper sends again what a lost worker left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.knowledge.chunking import Chunk, chunk_sections
from apps.knowledge.dispatch import QUEUE_UNAVAILABLE, ingest_enqueue
from apps.knowledge.email_attachments import attachments_create
from apps.knowledge.models import Document
from apps.knowledge.parsers import ParsedDocument, ParseError, parse_file
from apps.knowledge.points import payload_sync, points_build
from apps.knowledge.selectors import collection_group_ids
from apps.knowledge.versions import retire_older
from apps.retrieval import store as vector_store
from apps.retrieval.embeddings import dimension, get_model
from apps.retrieval.store.protocol import Filter, StoreUnavailable
from apps.retrieval.versions import current_versions

logger = logging.getLogger(__name__)

# Points per upsert; also how often a long document's heartbeat is refreshed.
UPSERT_BATCH = 64


class TransientIngestError(Exception):
    """Worth retrying later (the vector store is down, ...)."""


@dataclass
class Ingestion:
    """One run over one document; each stage fills in what the next one needs."""

    document_id: int
    worker: str
    document: Document | None = None  # set by claim
    parsed: ParsedDocument | None = None  # set by parse
    chunks: list[Chunk] = field(default_factory=list)  # set by chunk
    # The grants when embedding began: the points carry these, and finish compares them
    # with the grants then, to catch a change made in between.
    groups: list[int] = field(default_factory=list)

    @property
    def claimed(self) -> Document:
        if self.document is None:
            raise RuntimeError("a stage ran before claim")
        return self.document

    @property
    def read(self) -> ParsedDocument:
        if self.parsed is None:
            raise RuntimeError("a stage ran before parse")
        return self.parsed


# --- stages ---------------------------------------------------------------------------


def _claim(run: Ingestion) -> bool:
    """Move the document into parsing, unless it is gone or already finished."""
    with transaction.atomic():
        doc = Document.objects.select_for_update().filter(pk=run.document_id).first()
        if doc is None or doc.status in (Document.Status.INDEXED, Document.Status.FAILED):
            return False
        doc.status = Document.Status.PARSING
        doc.attempts += 1
        doc.worker = run.worker
        doc.heartbeat_at = timezone.now()
        doc.failure_reason = ""
        doc.save(
            update_fields=[
                "status",
                "attempts",
                "worker",
                "heartbeat_at",
                "failure_reason",
                "updated_at",
            ]
        )
    run.document = doc
    return True


def _parse(run: Ingestion) -> bool:
    try:
        run.parsed = document_parse(path=Path(run.claimed.file.path))
    except ParseError as err:
        document_fail(document_id=run.document_id, reason=str(err))
        return False
    except FileNotFoundError:
        document_fail(
            document_id=run.document_id, reason="The stored file is missing; upload it again."
        )
        return False
    return True


def _chunk(run: Ingestion) -> bool:
    try:
        run.chunks = document_chunk(parsed=run.read)
    except ParseError as err:
        document_fail(document_id=run.document_id, reason=str(err))
        return False
    return True


def _embed_and_upsert(run: Ingestion) -> bool:
    """Embed and upsert batch by batch: a long document holds one batch of vectors at a
    time, and every batch refreshes the heartbeat the reaper watches."""
    doc = run.claimed
    if not _mark_embedding(run.document_id, parsed=run.read):
        return False  # deleted since it was claimed
    run.groups = collection_group_ids(doc.collection)
    # Points for the active embedder version and any a re-index is building or has built.
    versions = current_versions()
    store = vector_store.get_store()
    try:
        store.ensure_collection(dense_size=dimension())
        # A retry after a crash may find some of this document's points already there;
        # clearing them first keeps the point set exactly the current chunks.
        store.delete(Filter.of(document_id=[run.document_id]))
        for batch in _batches(run.chunks, UPSERT_BATCH):
            store.upsert(
                points_build(document=doc, chunks=batch, groups=run.groups, versions=versions)
            )
            if not _heartbeat(run.document_id):
                # Deleted meanwhile. document_delete holds the row until it has removed
                # the points and the row, so this update waited for it and the batch
                # above may have landed after its removal: take back what we wrote.
                store.delete(Filter.of(document_id=[run.document_id]))
                return False
    except StoreUnavailable as err:
        _wait_for_store(run.document_id, reason=str(err))
        raise TransientIngestError(str(err)) from err
    return True


def _finish(run: Ingestion) -> bool:
    """Indexed, with its audit event; unless the document went away meanwhile."""
    doc = run.claimed
    with transaction.atomic():
        updated = (
            Document.objects.select_for_update()
            .filter(pk=run.document_id, status=Document.Status.EMBEDDING)
            .first()
        )
        if updated is None:
            # Deleted (or reset) while we were embedding: leave nothing behind. A delete
            # still in progress holds the row lock, so select_for_update above waited for
            # it to commit and this check sees the row gone.
            if not Document.objects.filter(pk=run.document_id).exists():
                vector_store.get_store().delete(Filter.of(document_id=[run.document_id]))
            return False
        # Points written above carry `doc.label` and `run.groups`; a change committed
        # since then (before this check) is copied onto them below. One committed after
        # it enqueues its own payload sync, which runs once our points are all in.
        stale = updated.label != doc.label or run.groups != collection_group_ids(updated.collection)
        updated.status = Document.Status.INDEXED
        updated.chunk_count = len(run.chunks)
        updated.indexed_at = timezone.now()
        updated.failure_reason = ""
        updated.save(
            update_fields=["status", "chunk_count", "indexed_at", "failure_reason", "updated_at"]
        )
        audit_record(
            actor=None,
            action="document.indexed",
            target=updated,
            details={
                "document_id": run.document_id,
                "collection_id": updated.collection_id,
                "label": updated.label,
                "chunk_count": len(run.chunks),
                "mime_type": run.read.mime_type,
                "version": updated.version,
            },
        )
    if stale:
        payload_sync(document_id=run.document_id)
    # The commit above was the swap (search hides older versions from then on); now
    # their points go.
    retire_older(document_id=run.document_id)
    return True


def _attachments(run: Ingestion) -> bool:
    """An e-mail's attachments become documents of their own (email_attachments.py),
    queued before the message reads "indexed", so an indexed message has them all."""
    attachments_create(document=run.claimed, parsed=run.read)
    return True


STAGES: tuple[Callable[[Ingestion], bool], ...] = (
    _claim,
    _parse,
    _chunk,
    _embed_and_upsert,
    _attachments,
    _finish,
)


def document_ingest(*, document_id: int, worker: str = "") -> None:
    """queued → parsing → embedding → indexed | failed. Safe to run twice.

    ParseError fails the document with its sentence; StoreUnavailable is transient and
    propagates as TransientIngestError for the task to retry.
    """
    run = Ingestion(document_id=document_id, worker=worker)
    for stage in STAGES:
        if not stage(run):
            return


# --- parse and chunk, also for callers that need the chunks without a document ---------


def document_parse(*, path: Path) -> ParsedDocument:
    """The file's text and sections; raises ParseError with a sentence for a person."""
    return parse_file(path, max_unpacked_bytes=settings.UNPACKED_MAX_BYTES)


def document_chunk(*, parsed: ParsedDocument) -> list[Chunk]:
    """The chunks the points are built from, sized in the embedder's word pieces."""
    chunks = chunk_sections(
        parsed.sections,
        chunk_size=settings.CHUNK_SIZE_TOKENS,
        chunk_overlap=settings.CHUNK_OVERLAP_TOKENS,
        tokenizer=get_model().tokenizer.tokenize,
    )
    if not chunks:
        raise ParseError("The file contains no text to index.")
    return chunks


def document_chunks(*, path: Path) -> tuple[ParsedDocument, list[Chunk]]:
    """Parse and chunk one file; raises ParseError with a sentence for a person."""
    parsed = document_parse(path=path)
    return parsed, document_chunk(parsed=parsed)


# --- status writes ----------------------------------------------------------------------


def _mark_embedding(document_id: int, *, parsed: ParsedDocument) -> bool:
    """False when the document is gone."""
    now = timezone.now()
    return 0 < Document.objects.filter(pk=document_id).update(
        status=Document.Status.EMBEDDING,
        mime_type=parsed.mime_type,
        text=parsed.text,
        metadata=parsed.metadata,
        ocr_pages=len(parsed.ocr.pages) if parsed.ocr else 0,
        ocr_confidence=parsed.ocr.confidence if parsed.ocr else None,
        heartbeat_at=now,
        updated_at=now,
    )


def _heartbeat(document_id: int) -> bool:
    """False when the document is gone (the update waits for a delete holding the row)."""
    now = timezone.now()
    return 0 < Document.objects.filter(pk=document_id).update(heartbeat_at=now, updated_at=now)


def _wait_for_store(document_id: int, *, reason: str) -> None:
    now = timezone.now()
    Document.objects.filter(pk=document_id).update(
        status=Document.Status.QUEUED,
        failure_reason=f"Waiting for the vector store: {reason}",
        heartbeat_at=now,
        updated_at=now,
    )


def _requeue(document_id: int) -> None:
    now = timezone.now()
    Document.objects.filter(pk=document_id).update(
        status=Document.Status.QUEUED, worker="", heartbeat_at=now, updated_at=now
    )


def document_fail(*, document_id: int, reason: str) -> None:
    with transaction.atomic():
        doc = Document.objects.select_for_update().filter(pk=document_id).first()
        if doc is None or doc.status == Document.Status.INDEXED:
            return
        doc.status = Document.Status.FAILED
        doc.failure_reason = reason
        doc.save(update_fields=["status", "failure_reason", "updated_at"])
        audit_record(
            actor=None,
            action="document.failed",
            target=doc,
            details={"document_id": doc.pk, "collection_id": doc.collection_id, "reason": reason},
        )


def _batches(items: Sequence[Chunk], size: int) -> Iterator[Sequence[Chunk]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the stale-job reaper ---------------------------------------------------------------


def ingestion_reap_stale(*, worker: str | None = None) -> list[int]:
    """Find documents nobody is working on any more and send them again (or fail them).

    With `worker`, every in-progress document claimed by that worker name is orphaned:
    the worker has just (re)started, so it cannot be working on them.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.INGEST_STALE_SECONDS)
    requeue: list[int] = []
    running = Document.objects.filter(
        status__in=[Document.Status.PARSING, Document.Status.EMBEDDING]
    )
    orphaned = running.filter(heartbeat_at__lt=cutoff)
    if worker:
        orphaned = orphaned | running.filter(worker=worker)
    for doc in orphaned.distinct():
        if doc.attempts >= settings.INGEST_MAX_ATTEMPTS:
            document_fail(
                document_id=doc.pk,
                reason=f"Ingestion stopped {doc.attempts} times without finishing (the worker "
                "was lost each time); check the worker logs, then re-ingest the document.",
            )
            continue
        _requeue(doc.pk)
        requeue.append(doc.pk)
    requeue.extend(
        Document.objects.filter(status=Document.Status.QUEUED)
        .filter(Q(updated_at__lt=cutoff) | Q(failure_reason=QUEUE_UNAVAILABLE))
        .exclude(pk__in=requeue)
        .values_list("pk", flat=True)
    )
    for pk in requeue:
        if ingest_enqueue(document_id=pk).queued:
            Document.objects.filter(
                pk=pk, status=Document.Status.QUEUED, failure_reason=QUEUE_UNAVAILABLE
            ).update(failure_reason="")
    if requeue:
        logger.info("re-queued stale documents %s", requeue)
    return requeue
