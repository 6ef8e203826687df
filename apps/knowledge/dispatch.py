"""Work for the ingestion workers, sent by task name.

The tasks live in workers/ingest.py, above this app; sending them by name through the
Celery app of apps/core keeps knowledge from importing them. The names match the
"workers.ingest.*" route there, so they still go to the "ingest" queue. Callers send
from `transaction.on_commit`, so a worker never sees an uncommitted row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apps.core.celery import app
from apps.knowledge.models import Document

logger = logging.getLogger(__name__)

INGEST_TASK = "workers.ingest.ingest_document_task"
SYNC_PAYLOAD_TASK = "workers.ingest.sync_payload_task"

# Kept on a document whose task could not be sent: the upload page shows it, and the
# reaper's next round (beat, every minute) sends it again without waiting for the stale
# cutoff. The worker clears it when it claims the document.
QUEUE_UNAVAILABLE = (
    "Waiting for the ingestion queue: it was unavailable when this file arrived; the file "
    "is stored and is sent again automatically once the queue is back."
)


@dataclass(frozen=True)
class EnqueueResult:
    queued: bool
    message: str = ""


def ingest_enqueue(*, document_id: int) -> EnqueueResult:
    """Send the document to the ingestion queue; a broker that is down leaves it queued,
    marked, for the stale-ingestion reaper to send again."""
    try:
        app.send_task(
            INGEST_TASK,
            args=[document_id],
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2},
        )
    except Exception:  # kombu raises several types when the broker is down
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


def payload_sync_enqueue(
    *, collection_id: int | None = None, document_id: int | None = None
) -> None:
    """Ask a worker to copy labels and grants onto the points. A broker that is down is
    logged, not raised: the change itself is committed already."""
    try:
        app.send_task(
            SYNC_PAYLOAD_TASK, kwargs={"collection_id": collection_id, "document_id": document_id}
        )
    except Exception:
        logger.exception(
            "could not enqueue payload sync (collection %s, document %s)",
            collection_id,
            document_id,
        )
