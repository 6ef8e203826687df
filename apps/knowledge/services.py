"""Writes to collections and documents, the ones a knowledge admin makes.

Every write records its audit event in the same transaction, and work for the Celery
workers is enqueued only once the transaction has committed (apps/knowledge/dispatch.py).
The ingestion pipeline itself is apps/knowledge/ingestion.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.labels import Label
from apps.knowledge.dispatch import EnqueueResult, ingest_enqueue, payload_sync_enqueue
from apps.knowledge.models import Collection, Document, Source
from apps.knowledge.parsers.base import human_size
from apps.knowledge.versions import lineage, next_version
from apps.retrieval import store as vector_store
from apps.retrieval.store.protocol import Filter

logger = logging.getLogger(__name__)

# The unique constraint on a collection's content (Document.Meta).
DUPLICATE_CONSTRAINT = "document_unique_content_per_collection"


class UploadRejected(Exception):
    """An upload refused before anything was stored; the message is for the uploader."""


def _sha256_of(upload: File) -> str:
    digest = hashlib.sha256()
    for part in upload.chunks():
        digest.update(part)
    upload.seek(0)
    return digest.hexdigest()


def _audit_access(
    *, actor: AbstractBaseUser | None, collection: Collection, details: dict[str, object]
) -> None:
    """One event for every change of who may read a collection, creation included."""
    audit_record(
        actor=actor,
        action="collection.access_changed",
        target=collection,
        details={"collection_id": collection.pk, **details},
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
        _audit_access(
            actor=actor,
            collection=collection,
            details={
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
        _audit_access(
            actor=actor,
            collection=collection,
            details={
                "groups_before": before,
                "groups": sorted(g.name for g in new_groups),
                "default_label": collection.default_label,
            },
        )
        transaction.on_commit(lambda: payload_sync_enqueue(collection_id=collection.pk))
    return collection


# --- Documents ------------------------------------------------------------------------


def _refuse_duplicate(*, collection: Collection, sha: str, name: str) -> None:
    existing = Document.objects.filter(
        collection=collection, sha256=sha, superseded_at__isnull=True
    ).first()
    if existing is not None:
        raise duplicate_of(collection=collection, name=name, title=existing.title)


def duplicate_of(*, collection: Collection, name: str, title: str) -> UploadRejected:
    """The refusal of an upload whose content is the current document titled `title`."""
    return UploadRejected(f"{name} is already in {collection.name} as “{title}” (same content).")


def upload_checked(
    *, upload: File, label: str | None, name: str | None = None
) -> tuple[str, int, str]:
    """(name, size, SHA-256) of an upload within the limits, or UploadRejected."""
    name = name or Path(upload.name or "upload").name
    size = upload.size or 0
    if size > settings.UPLOAD_MAX_BYTES:
        raise UploadRejected(
            f"{name} is {human_size(size)}; the limit is {human_size(settings.UPLOAD_MAX_BYTES)}."
        )
    if label is not None and label not in Label.values:
        raise UploadRejected(f"Unknown label {label!r}; use one of {', '.join(Label.values)}.")
    return name, size, _sha256_of(upload)


def uploader(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    """Who a document records as its uploader: nobody for a command or an anonymous user."""
    return user if user is not None and user.is_authenticated else None


def title_for(name: str, title: str | None = None) -> str:
    """The title a document gets: the one given, else its file name's stem in words."""
    return title or Path(name).stem.replace("_", " ").strip() or name


def audit_uploaded(
    *,
    document: Document,
    user: AbstractBaseUser | None,
    replaces: Document | None = None,
    source: Source | None = None,
) -> None:
    audit_record(
        actor=user,
        action="document.uploaded",
        target=document,
        details={
            "document_id": document.pk,
            "collection_id": document.collection_id,
            "label": document.label,
            "sha256": document.sha256,
            "size": document.size,
            "name": document.original_name,
            "version": document.version,
            "replaces": replaces.pk if replaces else None,
            "source_id": source.pk if source else None,
        },
    )


def _insert_unless_duplicate(doc: Document, *, name: str) -> None:
    """Insert the row; the same content uploaded at the same moment (two tabs, two admins)
    passes the check above in both requests, and the unique constraint then decides: the
    loser gets the same sentence as a later duplicate, not an IntegrityError."""
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction stays usable
            doc.save()
    except IntegrityError as err:
        if constraint_of(err) != DUPLICATE_CONSTRAINT:
            raise
        _refuse_duplicate(collection=doc.collection, sha=doc.sha256, name=name)
        raise  # the other upload rolled back meanwhile: nothing to name; a real error


def constraint_of(err: IntegrityError) -> str:
    diag = getattr(err.__cause__, "diag", None)
    return getattr(diag, "constraint_name", "") or ""


def document_create(
    *,
    collection: Collection,
    upload: File,
    user: AbstractBaseUser | None,
    label: str | None = None,
    title: str | None = None,
    name: str | None = None,
    source: Source | None = None,
    enqueue: bool = True,
) -> tuple[Document, EnqueueResult]:
    """Store an upload and queue its ingestion, or refuse it with a sentence.

    Under the name of a current document of the collection it is that document's next
    version (apps/knowledge/versions.py), with its label unless `label` says otherwise.
    `name` overrides the upload's own (a synced folder passes the path inside it).
    `enqueue=False` leaves the sending to the caller (a bulk load sends small files in
    batches, dispatch.ingest_enqueue_many); the document is stored as queued all the same,
    so if the caller dies before sending, the stale-ingestion reaper sends it.
    """
    name, size, sha = upload_checked(upload=upload, label=label, name=name)
    _refuse_duplicate(collection=collection, sha=sha, name=name)
    upcoming = next_version(collection=collection, name=name)
    if label is None:
        label = upcoming.previous.label if upcoming.previous else collection.default_label
    sent = EnqueueResult(queued=True)
    stored: list[str] = []
    try:
        with transaction.atomic():
            doc = Document(
                collection=collection,
                title=title_for(name, title),
                original_name=name,
                sha256=sha,
                size=size,
                label=label,
                version=upcoming.version,
                first_version=upcoming.first_version,
                source=source,
                uploaded_by=uploader(user),  # type: ignore[misc]  # AUTH_USER_MODEL is auth.User
            )
            doc.file.save(Path(name).name, upload, save=False)
            stored.append(doc.file.name or "")
            _insert_unless_duplicate(doc, name=name)
            audit_uploaded(document=doc, user=user, replaces=upcoming.previous, source=source)

            def _after_commit() -> None:
                nonlocal sent
                sent = ingest_enqueue(document_id=doc.pk)

            if enqueue:
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
    return doc, sent


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
        transaction.on_commit(lambda: payload_sync_enqueue(document_id=document.pk))
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
    return ingest_enqueue(document_id=document.pk)


def document_delete(*, document: Document, actor: AbstractBaseUser | None) -> None:
    """Remove a document and all its points; a worker ingesting it meanwhile leaves none.

    The document row is locked first, as every ingestion write does before it records an
    audit event, so the two paths take their locks in one order (row, then the audit
    append lock) and cannot deadlock. While the lock is held the worker cannot finish
    (its final check waits on the row) nor refresh its heartbeat after an upsert; once the
    row is gone, either sees that and removes what it wrote (ingestion._embed_and_upsert,
    _finish). The points go before the row: if the store is down, nothing is deleted.
    """
    with transaction.atomic():
        locked = Document.objects.select_for_update().filter(pk=document.pk).first()
        if locked is None:
            return  # deleted already, by another request
        vector_store.get_store().delete(Filter.of(document_id=[locked.pk]))
        audit_record(
            actor=actor,
            action="document.deleted",
            target=locked,
            details={
                "document_id": locked.pk,
                "collection_id": locked.collection_id,
                "label": locked.label,
                "sha256": locked.sha256,
            },
        )
        stored = locked.file.name
        storage = locked.file.storage
        locked.delete()
        if stored:
            transaction.on_commit(lambda: storage.delete(stored))


def document_delete_versions(*, document: Document, actor: AbstractBaseUser | None) -> int:
    """Remove every version of a document, newest first (each as document_delete does)."""
    versions = list(lineage(document))
    for version in versions:
        document_delete(document=version, actor=actor)
    return len(versions)
