"""The ingestion pipeline: documents from their stored files to their points.

    queued → claim → parse → chunk → embed and upsert → finish → indexed
                       └───────┴─ a sentence for a person ─→ failed

A run goes over one document (`document_ingest`) or a batch of small ones
(`documents_ingest`, what a bulk load sends): one code path, so a batch keeps every
promise a single document has. Each stage is a small function over the `Ingestion`s still
going (what the stages hand each other) and returns those that go on; a document leaves
the batch alone when it fails, is deleted or is done already, and the others go on. A batch
shares what costs per round trip: one claim, one encode and one upsert per UPSERT_BATCH
chunks, one heartbeat, one final transaction; each document still gets its own status
and its own audit event. A document the pipeline cannot read fails with a sentence
(ParseError); a vector store that is down is transient (TransientIngestError) for the
whole batch, and the task decides when to retry and when to give up (workers/ingest.py).
The stale-job reaper (reaper.py) sends again what a lost worker left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.services import audit_record
from apps.knowledge.bulk_writes import update_rows
from apps.knowledge.chunking import Chunk, chunk_sections
from apps.knowledge.email_attachments import attachments_create
from apps.knowledge.models import Collection, Document
from apps.knowledge.parsers import ParsedDocument, ParseError, parse_file
from apps.knowledge.points import payload_sync, points_build
from apps.knowledge.selectors import collection_group_ids
from apps.knowledge.versions import retire_older
from apps.retrieval import store as vector_store
from apps.retrieval.embeddings import dimension, get_model
from apps.retrieval.store.protocol import Filter, StoreUnavailable
from apps.retrieval.versions import current_versions

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Points per upsert (one encode each); also how often the heartbeat is refreshed.
UPSERT_BATCH = 64

_DONE = (Document.Status.INDEXED, Document.Status.FAILED)


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


Runs = list[Ingestion]


# --- stages ---------------------------------------------------------------------------


def _claim(runs: Runs) -> Runs:
    """Move the documents into parsing, except those gone or already finished."""
    ids = [run.document_id for run in runs]
    now = timezone.now()
    with transaction.atomic():
        # Rows locked in id order, the order every batch takes them in.
        docs = {
            doc.pk: doc
            for doc in Document.objects.select_for_update(of=("self",))
            .select_related("collection")
            .filter(pk__in=ids)
            .exclude(status__in=_DONE)
            .order_by("pk")
        }
        if not docs:
            return []
        worker = runs[0].worker
        Document.objects.filter(pk__in=list(docs)).update(
            status=Document.Status.PARSING,
            attempts=F("attempts") + 1,
            worker=worker,
            heartbeat_at=now,
            failure_reason="",
            updated_at=now,
        )
    claimed = []
    for run in runs:
        doc = docs.get(run.document_id)
        if doc is None:
            continue
        doc.status, doc.attempts, doc.worker = Document.Status.PARSING, doc.attempts + 1, worker
        doc.heartbeat_at, doc.failure_reason, doc.updated_at = now, "", now
        run.document = doc
        claimed.append(run)
    return claimed


def _parse(runs: Runs) -> Runs:
    return [run for run in runs if _parse_one(run)]


def _parse_one(run: Ingestion) -> bool:
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


def _chunk(runs: Runs) -> Runs:
    going = []
    for run in runs:
        try:
            run.chunks = document_chunk(parsed=run.read)
        except ParseError as err:
            document_fail(document_id=run.document_id, reason=str(err))
            continue
        going.append(run)
    return going


def _embed_and_upsert(runs: Runs) -> Runs:
    """Embed and upsert UPSERT_BATCH chunks at a time, across the batch's documents: a
    long document holds one batch of vectors at a time, and every batch refreshes the
    heartbeat the reaper watches."""
    runs = _mark_embedding(runs)  # those deleted since the claim leave here
    if not runs:
        return []
    grants: dict[int, list[int]] = {}  # one grants query per collection, not per document
    for run in runs:
        run.groups = _grants_of(run.claimed.collection, grants)
    # Points for the active embedder version and any a re-index is building or has built.
    versions = current_versions()
    store = vector_store.get_store()
    live = {run.document_id for run in runs}
    try:
        store.ensure_collection(dense_size=dimension())
        # A retry after a crash may find some of these documents' points already there;
        # clearing them first keeps each point set exactly the current chunks.
        store.delete(Filter.of(document_id=sorted(live)))
        pairs = [(run, chunk) for run in runs for chunk in run.chunks]
        for batch in _batches(pairs, UPSERT_BATCH):
            chunks = [(run.claimed, run.groups, c) for run, c in batch if run.document_id in live]
            if not chunks:
                continue  # their documents were deleted meanwhile
            store.upsert(points_build(chunks=chunks, versions=versions))
            gone = _heartbeat(sorted(live))
            if gone:
                # Deleted meanwhile. document_delete holds the row until it has removed
                # the points and the row, so this update waited for it and the batch
                # above may have landed after its removal: take back what we wrote.
                store.delete(Filter.of(document_id=sorted(gone)))
                live -= gone
    except StoreUnavailable as err:
        _wait_for_store([run.document_id for run in runs], reason=str(err))
        raise TransientIngestError(str(err)) from err
    return [run for run in runs if run.document_id in live]


def _attachments(runs: Runs) -> Runs:
    """An e-mail's attachments become documents of their own (email_attachments.py),
    queued before the message reads "indexed", so an indexed message has them all."""
    for run in runs:
        attachments_create(document=run.claimed, parsed=run.read)
    return runs


def _finish(runs: Runs) -> Runs:
    """Indexed, each with its audit event, in one transaction; except those that went
    away meanwhile."""
    ids = [run.document_id for run in runs]
    now = timezone.now()
    stale: list[int] = []
    with transaction.atomic():
        locked = {
            doc.pk: doc
            for doc in Document.objects.select_for_update(of=("self",))
            .select_related("collection")
            .filter(pk__in=ids, status=Document.Status.EMBEDDING)
            .order_by("pk")
        }
        if len(locked) < len(ids):
            # Deleted (or reset) while we were embedding: leave nothing behind. A delete
            # still in progress holds the row lock, so select_for_update above waited for
            # it to commit and this check sees the row gone.
            missing = [pk for pk in ids if pk not in locked]
            gone = set(missing) - set(
                Document.objects.filter(pk__in=missing).values_list("pk", flat=True)
            )
            if gone:
                vector_store.get_store().delete(Filter.of(document_id=sorted(gone)))
        done = [run for run in runs if run.document_id in locked]
        grants: dict[int, list[int]] = {}
        for run in done:
            updated = locked[run.document_id]
            # Points written above carry the claimed label and `run.groups`; a change
            # committed since then (before this check) is copied onto them below. One
            # committed after it enqueues its own payload sync, which runs once our
            # points are all in.
            if updated.label != run.claimed.label or run.groups != _grants_of(
                updated.collection, grants
            ):
                stale.append(updated.pk)
            updated.status = Document.Status.INDEXED
            updated.chunk_count = len(run.chunks)
            updated.indexed_at = updated.updated_at = now
            updated.failure_reason = ""
        update_rows(
            [locked[run.document_id] for run in done],
            ["status", "chunk_count", "indexed_at", "failure_reason", "updated_at"],
        )
        for run in done:
            updated = locked[run.document_id]
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
    for pk in stale:
        payload_sync(document_id=pk)
    # The commit above was the swap (search hides older versions from then on); now
    # their points go. A first version has none.
    for run in done:
        if locked[run.document_id].first_version_id is not None:
            retire_older(document_id=run.document_id)
    return done


STAGES: tuple[Callable[[Runs], Runs], ...] = (
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
    documents_ingest(document_ids=[document_id], worker=worker)


def documents_ingest(*, document_ids: Sequence[int], worker: str = "") -> None:
    """document_ingest over several documents at once; each one ends as it would alone
    (a broken one fails with its sentence, the others are indexed). Safe to run twice."""
    runs = [Ingestion(document_id=pk, worker=worker) for pk in dict.fromkeys(document_ids)]
    for stage in STAGES:
        runs = stage(runs)
        if not runs:
            return


def _grants_of(collection: Collection, cache: dict[int, list[int]]) -> list[int]:
    if collection.pk not in cache:
        cache[collection.pk] = collection_group_ids(collection)
    return cache[collection.pk]


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


def _mark_embedding(runs: Runs) -> Runs:
    """Those still there (the others were deleted since the claim)."""
    now = timezone.now()
    docs = []
    for run in runs:
        doc, parsed = run.claimed, run.read
        doc.status = Document.Status.EMBEDDING
        doc.mime_type, doc.text, doc.metadata = parsed.mime_type, parsed.text, parsed.metadata
        doc.ocr_pages = len(parsed.ocr.pages) if parsed.ocr else 0
        doc.ocr_confidence = parsed.ocr.confidence if parsed.ocr else None
        doc.heartbeat_at = doc.updated_at = now
        docs.append(doc)
    fields = ["status", "mime_type", "text", "metadata", "ocr_pages", "ocr_confidence"]
    if update_rows(docs, [*fields, "heartbeat_at", "updated_at"]) == len(docs):
        return runs
    there = set(Document.objects.filter(pk__in=[d.pk for d in docs]).values_list("pk", flat=True))
    return [run for run in runs if run.document_id in there]


def _heartbeat(document_ids: list[int]) -> set[int]:
    """The ids among these that are gone (the update waits for a delete holding a row)."""
    now = timezone.now()
    updated = Document.objects.filter(pk__in=document_ids).update(heartbeat_at=now, updated_at=now)
    if updated == len(document_ids):
        return set()
    there = Document.objects.filter(pk__in=document_ids).values_list("pk", flat=True)
    return set(document_ids) - set(there)


def _wait_for_store(document_ids: list[int], *, reason: str) -> None:
    now = timezone.now()
    Document.objects.filter(pk__in=document_ids).exclude(status__in=_DONE).update(
        status=Document.Status.QUEUED,
        failure_reason=f"Waiting for the vector store: {reason}",
        heartbeat_at=now,
        updated_at=now,
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


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
