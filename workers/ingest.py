"""Ingestion tasks: ids in, one service call each; safe to run twice."""

from __future__ import annotations

import logging

from celery import signals
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from workers.celery import app

logger = logging.getLogger(__name__)


def _services():  # noqa: ANN202 - Django must be set up before the services import
    from apps.knowledge import services

    return services


@app.task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=5,
    retry_backoff=True,
    retry_backoff_max=120,
)
def ingest_document_task(self, document_id: int) -> None:  # noqa: ANN001
    services = _services()
    try:
        services.document_ingest(document_id=document_id, worker=self.request.hostname or "")
    except services.TransientIngestError as err:
        if self.request.retries >= self.max_retries:
            services.document_fail(
                document_id=document_id,
                reason=f"The vector store stayed unavailable after {self.max_retries} retries "
                f"({err}); start it and re-ingest the document.",
            )
            return
        raise self.retry(exc=err, countdown=min(2**self.request.retries, 120)) from err
    except SoftTimeLimitExceeded:
        services.document_fail(
            document_id=document_id,
            reason=f"Ingestion took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} seconds; "
            "split the file into smaller parts and upload them.",
        )
    except Exception as err:
        logger.exception("ingestion of document %s failed", document_id)
        services.document_fail(
            document_id=document_id,
            reason=f"Ingestion failed unexpectedly ({type(err).__name__}); the error is in the "
            "worker log. Re-ingest the document once it is fixed.",
        )


@app.task(acks_late=True, max_retries=10, autoretry_for=(Exception,), retry_backoff=True)
def sync_payload_task(collection_id: int | None = None, document_id: int | None = None) -> None:
    _services().payload_sync(collection_id=collection_id, document_id=document_id)


@app.task
def reap_stale_task() -> list[int]:
    return _services().ingestion_reap_stale()


@signals.worker_ready.connect
def _reap_own_orphans(sender=None, **kwargs) -> None:  # noqa: ANN001, ANN003
    """A worker that has just started cannot be working on anything it had claimed."""
    hostname = getattr(sender, "hostname", None)
    try:
        _services().ingestion_reap_stale(worker=hostname)
    except Exception:
        logger.exception("stale-ingestion check at start-up failed")
