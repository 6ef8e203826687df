"""The stale-job reaper: documents nobody is working on any more are sent again, or failed
once they have been tried INGEST_MAX_ATTEMPTS times (the pipeline is ingestion.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.knowledge.dispatch import QUEUE_UNAVAILABLE, ingest_enqueue
from apps.knowledge.ingestion import document_fail
from apps.knowledge.models import Document

logger = logging.getLogger(__name__)


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


def _requeue(document_id: int) -> None:
    now = timezone.now()
    Document.objects.filter(pk=document_id).update(
        status=Document.Status.QUEUED, worker="", heartbeat_at=now, updated_at=now
    )


def ingestion_requeue_alone(*, document_ids: list[int]) -> list[int]:
    """A batch stopped by something other than a broken file (a time limit, a bug): each
    of its unfinished documents goes back to the queue as its own task, so the one at
    fault fails alone, with the single task's sentence, and the others are indexed."""
    unfinished = unfinished_of(document_ids)
    for pk in unfinished:
        _requeue(pk)
        ingest_enqueue(document_id=pk)
    return unfinished


def unfinished_of(document_ids: list[int]) -> list[int]:
    """Those of the documents that are neither indexed nor failed."""
    return list(
        Document.objects.filter(pk__in=document_ids)
        .exclude(status__in=[Document.Status.INDEXED, Document.Status.FAILED])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
