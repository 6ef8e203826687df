"""Writes to collections and documents, and the ingestion pipeline.

Every write records its audit event in the same transaction, and work for the Celery
workers is enqueued only once the transaction has committed.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.knowledge.models import Collection, Document
from apps.core.labels import Label
from apps.retrieval.store.protocol import Filter, Point, StoreUnavailable

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from apps.knowledge.chunking import Chunk

logger = logging.getLogger(__name__)

POINT_NAMESPACE = uuid.UUID("6b0f7d2e-4c1a-5e8b-9d3f-2a7c1e5b8f40")
UPSERT_BATCH = 64


class UploadRejected(Exception):
    """An upload refused before anything was stored; the message is for the uploader."""


class TransientIngestError(Exception):
    """Worth retrying later (the vector store is down, ...)."""


@dataclass(frozen=True)
class EnqueueResult:
    queued: bool
    message: str = ""


def point_id(document_id: int, chunk_index: int) -> str:
    """Derived, not random: re-ingesting a document rewrites exactly the same points."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{chunk_index}"))


def _human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return (
            f"{n / (1024 * 1024):.0f} MB"
            if n % (1024 * 1024) == 0
            else f"{n / (1024 * 1024):.1f} MB"
        )
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _sha256_of(upload: File) -> str:
    digest = hashlib.sha256()
    for part in upload.chunks():
        digest.update(part)
    upload.seek(0)
    return digest.hexdigest()


# Kept on a document whose task could not be sent: the upload page shows it, and the
# reaper's next round (beat, every minute) sends it again without waiting for the stale
# cutoff. The worker clears it when it claims the document.
QUEUE_UNAVAILABLE = (
    "Waiting for the ingestion queue: it was unavailable when this file arrived; the file "
    "is stored and is sent again automatically once the queue is back."
)


def _enqueue_ingest(document_id: int) -> EnqueueResult:
    from workers.ingest import ingest_document_task

    try:
        ingest_document_task.apply_async(
            args=[document_id], retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2}
        )
    except Exception:  # kombu raises several types when the broker is down
        # The document stays "queued"; the stale-ingestion reaper sends it again later.
        logger.exception("could not enqueue document %s", document_id)
        try:
            Document.objects.filter(pk=document_id, status=Document.Status.QUEUED).update(
                failure_reason=QUEUE_UNAVAILABLE
            )
        except Exception:  # runs after commit: must not turn a stored upload into an error
            logger.exception("could not mark document %s as waiting for the queue", document_id)
        return EnqueueResult(
            queued=False,
            message="The ingestion queue is unavailable right now; the file is stored "
            "and will be processed when the queue is back.",
        )
    return EnqueueResult(queued=True)


def _enqueue_payload_sync(
    *, collection_id: int | None = None, document_id: int | None = None
) -> None:
    from workers.ingest import sync_payload_task

    try:
        sync_payload_task.delay(collection_id=collection_id, document_id=document_id)
    except Exception:
        logger.exception(
            "could not enqueue payload sync (collection %s, document %s)",
            collection_id,
            document_id,
        )


# --- Collections ----------------------------------------------------------------------


def collection_create(
    *,
    name: str,
    actor: AbstractBaseUser | None,
    description: str = "",
    default_label: str = Label.CONFIDENTIAL,
    groups: Iterable[Group] = (),
) -> Collection:
    with transaction.atomic():
        collection = Collection.objects.create(
            name=name, description=description, default_label=default_label
        )
        collection.groups.set(list(groups))
        audit_record(
            actor=actor,
            action="collection.access_changed",
            target=collection,
            details={
                "collection_id": collection.pk,
                "created": True,
                "groups": sorted(g.name for g in collection.groups.all()),
                "default_label": default_label,
            },
        )
    return collection


def collection_set_access(
    *,
    collection: Collection,
    groups: Iterable[Group],
    actor: AbstractBaseUser | None,
    default_label: str | None = None,
) -> Collection:
    """Grant the collection to exactly these groups; the points follow."""
    new_groups = list(groups)
    with transaction.atomic():
        collection = Collection.objects.select_for_update().get(pk=collection.pk)
        before = sorted(g.name for g in collection.groups.all())
        collection.groups.set(new_groups)
        if default_label is not None:
            collection.default_label = default_label
            collection.save(update_fields=["default_label"])
        audit_record(
            actor=actor,
            action="collection.access_changed",
            target=collection,
            details={
                "collection_id": collection.pk,
                "groups_before": before,
                "groups": sorted(g.name for g in new_groups),
                "default_label": collection.default_label,
            },
        )
        transaction.on_commit(lambda: _enqueue_payload_sync(collection_id=collection.pk))
    return collection


# --- Documents ------------------------------------------------------------------------


def document_create(
    *,
    collection: Collection,
    upload: File,
    user: AbstractBaseUser | None,
    label: str | None = None,
    title: str | None = None,
) -> tuple[Document, EnqueueResult]:
    """Store an upload and queue its ingestion, or refuse it with a sentence."""
    name = Path(upload.name or "upload").name
    size = upload.size or 0
    if size > settings.UPLOAD_MAX_BYTES:
        raise UploadRejected(
            f"{name} is {_human_size(size)}; the limit is {_human_size(settings.UPLOAD_MAX_BYTES)}."
        )
    if label is not None and label not in Label.values:
        raise UploadRejected(f"Unknown label {label!r}; use one of {', '.join(Label.values)}.")
    sha = _sha256_of(upload)
    existing = Document.objects.filter(collection=collection, sha256=sha).first()
    if existing is not None:
        raise UploadRejected(
            f"{name} is already in {collection.name} as “{existing.title}” (same content)."
        )
    enqueue = EnqueueResult(queued=True)
    stored: list[str] = []
    try:
        with transaction.atomic():
            doc = Document(
                collection=collection,
                title=title or Path(name).stem.replace("_", " ").strip() or name,
                original_name=name,
                sha256=sha,
                size=size,
                label=label or collection.default_label,
                uploaded_by=user if user is not None and user.is_authenticated else None,  # type: ignore[misc]  # AUTH_USER_MODEL is auth.User
            )
            doc.file.save(name, upload, save=False)
            stored.append(doc.file.name or "")
            doc.save()
            audit_record(
                actor=user,
                action="document.uploaded",
                target=doc,
                details={
                    "document_id": doc.pk,
                    "collection_id": collection.pk,
                    "label": doc.label,
                    "sha256": sha,
                    "size": size,
                    "name": name,
                },
            )

            def _after_commit() -> None:
                nonlocal enqueue
                enqueue = _enqueue_ingest(doc.pk)

            transaction.on_commit(_after_commit)
    except BaseException:
        # Not committed (the database went away mid-upload, ...): the stored file belongs
        # to no document, so it goes too, and nothing half-written is left behind.
        for stored_name in filter(None, stored):
            try:
                doc.file.storage.delete(stored_name)
            except OSError:
                logger.exception("could not remove %s after a failed upload", stored_name)
        raise
    return doc, enqueue


def document_set_label(
    *, document: Document, label: str, actor: AbstractBaseUser | None
) -> Document:
    if label not in Label.values:
        raise ValueError(f"unknown label {label!r}")
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=document.pk)
        before = document.label
        document.label = label
        document.save(update_fields=["label", "updated_at"])
        audit_record(
            actor=actor,
            action="document.label_changed",
            target=document,
            details={"document_id": document.pk, "label_before": before, "label": label},
        )
        transaction.on_commit(lambda: _enqueue_payload_sync(document_id=document.pk))
    return document


def document_reingest(*, document: Document, actor: AbstractBaseUser | None) -> EnqueueResult:
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.QUEUED,
            failure_reason="",
            attempts=0,
            worker="",
            updated_at=timezone.now(),
        )
        audit_record(
            actor=actor,
            action="document.reingest_requested",
            target=document,
            details={"document_id": document.pk},
        )
    return _enqueue_ingest(document.pk)


def document_delete(*, document: Document, actor: AbstractBaseUser | None) -> None:
    """Remove the points first: a document must never be findable after it is gone."""
    from apps.retrieval.store import get_store

    get_store().delete(Filter.of(document_id=[document.pk]))
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="document.deleted",
            target=document,
            details={
                "document_id": document.pk,
                "collection_id": document.collection_id,
                "label": document.label,
                "sha256": document.sha256,
            },
        )
        stored = document.file.name
        document.delete()
        if stored:
            transaction.on_commit(lambda: document.file.storage.delete(stored))


# --- Ingestion pipeline ---------------------------------------------------------------


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _claim(document_id: int, worker: str) -> Document | None:
    """Move a document into parsing, unless it is gone or already finished."""
    with transaction.atomic():
        doc = Document.objects.select_for_update().filter(pk=document_id).first()
        if doc is None or doc.status in (Document.Status.INDEXED, Document.Status.FAILED):
            return None
        doc.status = Document.Status.PARSING
        doc.attempts += 1
        doc.worker = worker
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
    return doc


def _update(document_id: int, **fields: Any) -> int:
    fields.setdefault("heartbeat_at", timezone.now())
    fields["updated_at"] = timezone.now()
    return Document.objects.filter(pk=document_id).update(**fields)


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


def _tokenizer() -> Any:
    from apps.retrieval.embeddings import get_model

    tokenizer = get_model().tokenizer
    return tokenizer.tokenize


def document_chunks(*, path: Path) -> tuple[Any, list[Chunk]]:
    """Parse and chunk one file; raises ParseError with a sentence for a person."""
    from apps.knowledge.chunking import chunk_sections
    from apps.knowledge.parsers import ParseError, parse_file

    parsed = parse_file(path, max_unpacked_bytes=settings.UNPACKED_MAX_BYTES)
    chunks = chunk_sections(
        parsed.sections,
        chunk_size=settings.CHUNK_SIZE_TOKENS,
        chunk_overlap=settings.CHUNK_OVERLAP_TOKENS,
        tokenizer=_tokenizer(),
    )
    if not chunks:
        raise ParseError("The file contains no text to index.")
    return parsed, chunks


def build_points(*, document: Document, chunks: Sequence[Chunk], groups: list[int]) -> list[Point]:
    from apps.knowledge.chunking import embedding_text
    from apps.retrieval import sparse
    from apps.retrieval.embeddings import embed

    texts = [embedding_text(title=document.title, section=c.section, text=c.text) for c in chunks]
    dense = embed(texts)
    sparse_vectors = sparse.encode_documents(texts)
    return [
        Point(
            id=point_id(document.pk, c.index),
            dense=d,
            sparse=s,
            payload={
                "collection_id": document.collection_id,
                "document_id": document.pk,
                "chunk_index": c.index,
                "label": document.label,
                "groups": groups,
                "title": document.title,
                "section": c.section,
                "text": c.text,
                "page": c.page,
                "char_start": c.char_start,
                "char_end": c.char_end,
            },
        )
        for c, d, s in zip(chunks, dense, sparse_vectors, strict=True)
    ]


def document_ingest(*, document_id: int, worker: str = "") -> None:
    """queued → parsing → embedding → indexed | failed. Safe to run twice.

    ParseError fails the document with its sentence; StoreUnavailable is transient and
    propagates as TransientIngestError so the task retries with backoff.
    """
    from apps.knowledge.parsers import ParseError
    from apps.retrieval.embeddings import dimension
    from apps.retrieval.store import get_store

    doc = _claim(document_id, worker)
    if doc is None:
        return
    try:
        parsed, chunks = document_chunks(path=Path(doc.file.path))
    except ParseError as err:
        document_fail(document_id=document_id, reason=str(err))
        return
    except FileNotFoundError:
        document_fail(
            document_id=document_id, reason="The stored file is missing; upload it again."
        )
        return
    _update(
        document_id, status=Document.Status.EMBEDDING, mime_type=parsed.mime_type, text=parsed.text
    )
    groups = sorted(doc.collection.groups.values_list("pk", flat=True))
    store = get_store()
    try:
        store.ensure_collection(dense_size=dimension())
        # A retry after a crash may find some of this document's points already there;
        # clearing them first keeps the point set exactly the current chunks.
        store.delete(Filter.of(document_id=[document_id]))
        for batch in _batches(chunks, UPSERT_BATCH):
            store.upsert(build_points(document=doc, chunks=batch, groups=groups))
            _update(document_id)
    except StoreUnavailable as err:
        _update(
            document_id,
            status=Document.Status.QUEUED,
            failure_reason=f"Waiting for the vector store: {err}",
        )
        raise TransientIngestError(str(err)) from err
    with transaction.atomic():
        updated = (
            Document.objects.select_for_update()
            .filter(pk=document_id, status=Document.Status.EMBEDDING)
            .first()
        )
        if updated is None:
            # Deleted (or reset) while we were embedding: leave nothing behind.
            if not Document.objects.filter(pk=document_id).exists():
                store.delete(Filter.of(document_id=[document_id]))
            return
        # Points written above carry `doc.label` and `groups`; a change committed since
        # then (before this check) is copied onto them below. One committed after it
        # enqueues its own payload sync, which runs once our points are all in.
        stale = updated.label != doc.label or groups != sorted(
            updated.collection.groups.values_list("pk", flat=True)
        )
        updated.status = Document.Status.INDEXED
        updated.chunk_count = len(chunks)
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
                "document_id": document_id,
                "collection_id": updated.collection_id,
                "label": updated.label,
                "chunk_count": len(chunks),
                "mime_type": parsed.mime_type,
            },
        )
    if stale:
        payload_sync(document_id=document_id)


def payload_sync(*, collection_id: int | None = None, document_id: int | None = None) -> None:
    """Copy labels and granted groups from the database onto the points."""
    from apps.retrieval.store import get_store

    store = get_store()
    docs = Document.objects.all()
    if collection_id is not None:
        docs = docs.filter(collection_id=collection_id)
    if document_id is not None:
        docs = docs.filter(pk=document_id)
    for doc in docs.select_related("collection"):
        groups = sorted(doc.collection.groups.values_list("pk", flat=True))
        store.set_payload(
            Filter.of(document_id=[doc.pk]),
            {"label": doc.label, "groups": groups, "collection_id": doc.collection_id},
        )


def ingestion_reap_stale(*, worker: str | None = None) -> list[int]:
    """Find documents nobody is working on any more and send them again (or fail them).

    With `worker`, every in-progress document claimed by that worker name is orphaned:
    the worker has just (re)started, so it cannot be working on them.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.INGEST_STALE_SECONDS)
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
        _update(doc.pk, status=Document.Status.QUEUED, worker="")
        requeue.append(doc.pk)
    requeue.extend(
        Document.objects.filter(status=Document.Status.QUEUED)
        .filter(Q(updated_at__lt=cutoff) | Q(failure_reason=QUEUE_UNAVAILABLE))
        .exclude(pk__in=requeue)
        .values_list("pk", flat=True)
    )
    for pk in requeue:
        if _enqueue_ingest(pk).queued:
            Document.objects.filter(
                pk=pk, status=Document.Status.QUEUED, failure_reason=QUEUE_UNAVAILABLE
            ).update(failure_reason="")
    if requeue:
        logger.info("re-queued stale documents %s", requeue)
    return requeue
