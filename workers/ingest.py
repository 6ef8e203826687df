"""Ingestion tasks: ids in, the pipeline of apps/knowledge/ingestion.py; safe to run twice.

The pipeline fails a document whose file cannot be read, with the parser's sentence, and
raises TransientIngestError when the vector store is down. Everything else is the task's
failure policy, here: retrying the transient error on its own countdown, giving up after
`max_retries`, and the sentence a person reads on the document when it gives up, when
the soft time limit stops it, or when an unexpected error does.
"""

from __future__ import annotations

import logging

from celery import Task, signals
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from apps.knowledge import ingestion, reaper
from apps.knowledge.points import payload_sync
from workers.celery import app

logger = logging.getLogger(__name__)

# Seconds before the next try grow 1, 2, 4, ... up to this.
RETRY_MAX_COUNTDOWN = 120


# The task retries itself (self.retry below) only for TransientIngestError, with its own
# countdown; any other error fails the document at once, so no autoretry options here.
@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def ingest_document_task(self: Task, document_id: int) -> None:
    try:
        ingestion.document_ingest(document_id=document_id, worker=self.request.hostname or "")
    except ingestion.TransientIngestError as err:
        if self.request.retries >= self.max_retries:
            ingestion.document_fail(document_id=document_id, reason=_store_gone(self, err))
            return
        countdown = min(2**self.request.retries, RETRY_MAX_COUNTDOWN)
        raise self.retry(exc=err, countdown=countdown) from err
    except SoftTimeLimitExceeded:
        ingestion.document_fail(
            document_id=document_id,
            reason=f"Ingestion took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} seconds; "
            "split the file into smaller parts and upload them.",
        )
    except Exception as err:
        logger.exception("ingestion of document %s failed", document_id)
        ingestion.document_fail(
            document_id=document_id,
            reason=f"Ingestion failed unexpectedly ({type(err).__name__}); the error is in the "
            "worker log. Re-ingest the document once it is fixed.",
        )


# What a bulk load sends for its small files (apps/knowledge/dispatch.py): the batch shares
# its round trips, and each document ends as it would in its own task. The vector store
# down is the batch's retry; anything else sends each unfinished document to its own task,
# where the policy above gives the one at fault its sentence.
@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def ingest_documents_task(self: Task, document_ids: list[int]) -> None:
    try:
        ingestion.documents_ingest(document_ids=document_ids, worker=self.request.hostname or "")
    except ingestion.TransientIngestError as err:
        if self.request.retries >= self.max_retries:
            for document_id in reaper.unfinished_of(document_ids):
                ingestion.document_fail(document_id=document_id, reason=_store_gone(self, err))
            return
        countdown = min(2**self.request.retries, RETRY_MAX_COUNTDOWN)
        raise self.retry(exc=err, countdown=countdown) from err
    except Exception:  # SoftTimeLimitExceeded included
        logger.exception(
            "batch ingestion of documents %s stopped; sending each alone", document_ids
        )
        reaper.ingestion_requeue_alone(document_ids=document_ids)


def _store_gone(task: Task, err: Exception) -> str:
    return (
        f"The vector store stayed unavailable after {task.max_retries} retries ({err}); "
        "start it and re-ingest the document."
    )


@app.task(acks_late=True, max_retries=10, autoretry_for=(Exception,), retry_backoff=True)
def sync_payload_task(collection_id: int | None = None, document_id: int | None = None) -> None:
    payload_sync(collection_id=collection_id, document_id=document_id)


@app.task
def reap_stale_task() -> list[int]:
    return reaper.ingestion_reap_stale()


@signals.worker_ready.connect
def _reap_own_orphans(sender: object = None, **_kwargs: object) -> None:
    """A worker that has just started cannot be working on anything it had claimed."""
    hostname = getattr(sender, "hostname", None)
    try:
        reaper.ingestion_reap_stale(worker=hostname)
    except Exception:
        logger.exception("stale-ingestion check at start-up failed")
