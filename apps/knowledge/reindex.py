"""The blue/green re-index: every indexed document's points again, for another embedder
version, while the active version keeps answering (apps/retrieval/versions.py).

A document's new points are built from its active points read back from the store (the
stored chunk text and its titles: what the ingestion embedded), so nothing is parsed
again. Each document is done under its row lock: a delete (document_delete holds the row
while it removes the points) waits for it or is waited for, and a document that is being
ingested is skipped, since ingestion writes every current version's points itself.
Passes repeat until one finds nothing left to do, so a document that finished ingesting
meanwhile, or a run cut short by a lost worker, is completed; running it twice writes the
same points.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction

from apps.knowledge.models import Collection, Document
from apps.knowledge.points import points_rebuild
from apps.retrieval import store as vector_store
from apps.retrieval.models import EmbedderVersion
from apps.retrieval.store.protocol import Filter, ScoredPoint, VectorStore
from apps.retrieval.versions import active_version, mark_ready

logger = logging.getLogger(__name__)

MAX_PASSES = 5
IN_PROGRESS = (Document.Status.PARSING, Document.Status.EMBEDDING)
PAGE = 256


def _stored(store: VectorStore, flt: Filter) -> list[ScoredPoint]:
    found: list[ScoredPoint] = []
    offset: str | None = None
    while True:
        page, offset = store.scroll(flt, limit=PAGE, offset=offset)
        found.extend(page)
        if offset is None:
            return found


def _building(version_id: int) -> bool:
    return EmbedderVersion.objects.filter(
        pk=version_id, state=EmbedderVersion.State.BUILDING
    ).exists()


def _document(store: VectorStore, *, document_id: int, source: int, target: EmbedderVersion) -> int:
    """Write `target`'s points of one document unless they are there already; the number
    written (0 when complete, gone, or being ingested)."""
    with transaction.atomic():
        doc = Document.objects.select_for_update().filter(pk=document_id).first()
        if doc is None or doc.status != Document.Status.INDEXED:
            return 0
        have = store.count(Filter.of(document_id=[document_id], embedder=[target.pk]))
        stored = _stored(store, Filter.of(document_id=[document_id], embedder=[source]))
        if have == len(stored):
            return 0
        # Fewer or more than the source: rebuild this document's points from scratch.
        store.delete(Filter.of(document_id=[document_id], embedder=[target.pk]))
        points = points_rebuild(stored, version=target)
        if points:
            store.upsert(points)
        return len(points)


def version_build(*, version_id: int) -> None:
    """Fill a building version with every indexed document's points, then mark it ready.
    Stops quietly when the version was dropped (or is no longer building)."""
    target = EmbedderVersion.objects.filter(pk=version_id).first()
    if target is None or target.state != EmbedderVersion.State.BUILDING:
        return
    source = active_version().pk
    store = vector_store.get_store()
    # Documents already being ingested when the build began may have read the versions
    # before this one was building: the last pass waits for them (bounded by the reaper's
    # stale cutoff), so their points are added once they are indexed.
    in_progress = set(Document.objects.filter(status__in=IN_PROGRESS).values_list("pk", flat=True))
    waited_until = time.monotonic() + settings.INGEST_STALE_SECONDS
    documents = 0
    round_ = writing_passes = 0
    while writing_passes < MAX_PASSES:
        round_ += 1
        in_progress = set(
            Document.objects.filter(pk__in=in_progress, status__in=IN_PROGRESS).values_list(
                "pk", flat=True
            )
        )
        written = 0
        ids = list(
            Document.objects.filter(status=Document.Status.INDEXED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for n, document_id in enumerate(ids):
            if n % 50 == 0:
                if not _building(version_id):
                    # Dropped meanwhile: what this pass wrote after the drop goes too.
                    store.delete(Filter.of(embedder=[version_id]))
                    return
                EmbedderVersion.objects.filter(pk=version_id).update(
                    progress={"pass": round_, "documents": n, "of": len(ids)}
                )
            written += _document(store, document_id=document_id, source=source, target=target)
        documents = len(ids)
        if in_progress and time.monotonic() < waited_until:
            time.sleep(1)
            continue  # not the last pass yet, whatever it wrote
        if not written:
            break
        writing_passes += 1
        logger.info("re-index of %s pass %s wrote %s points", target.name, round_, written)
    if not _building(version_id):
        store.delete(Filter.of(embedder=[version_id]))
        return
    points = store.count(Filter.of(embedder=[version_id]))
    mark_ready(version_id, documents=documents, points=points)


def embedder_backfill() -> int:
    """Tag the points written before embedder versions existed with the packaged model's
    version; how many were tagged. Runs at every worker start and as `manage.py
    embedder backfill`; a store whose points all carry a version is left alone.

    Only safe while the packaged model is the only one that has ever written points, so
    it refuses otherwise (an untagged point is never searched, but it is not guessed at).
    """
    ids = list(Collection.objects.values_list("pk", flat=True))
    if not ids:
        return 0
    store = vector_store.get_store()
    every = store.count(Filter.of(collection_id=ids))
    versions = list(EmbedderVersion.objects.values_list("pk", flat=True))
    untagged = every - store.count(Filter.of(collection_id=ids, embedder=versions))
    if untagged <= 0:
        return 0
    active = active_version()
    others = [pk for pk in versions if pk != active.pk]
    if not active.is_base or (others and store.count(Filter.of(embedder=others))):
        raise RuntimeError(
            f"{untagged} points carry no embedder version, and versions other than the "
            "packaged model have points: re-ingest the documents instead of a backfill"
        )
    store.set_payload(Filter.of(collection_id=ids), {"embedder": active.pk})
    logger.info("tagged %s points with embedder version %s", untagged, active.name)
    return untagged
