"""Work for the ingestion workers, sent by task name.

The tasks live in workers/ingest.py, above this app; sending them by name through the
Celery app of apps/core keeps knowledge from importing them. The names match the
"workers.ingest.*" route there, so they still go to the "ingest" queue. Callers send
from `transaction.on_commit`, so a worker never sees an uncommitted row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from apps.core.celery import app
from apps.knowledge.models import Document

logger = logging.getLogger(__name__)

INGEST_TASK = "workers.ingest.ingest_document_task"
INGEST_BATCH_TASK = "workers.ingest.ingest_documents_task"
SYNC_PAYLOAD_TASK = "workers.ingest.sync_payload_task"

# Kept on a document whose task could not be sent: the upload page shows it, and the
# reaper's next round (beat, every minute) sends it again without waiting for the stale
# cutoff. The worker clears it when it claims the document.
QUEUE_UNAVAILABLE = (
    "Waiting for the ingestion queue: it was unavailable when this file arrived; the file "
    "is stored and is sent again automatically once the queue is back."
)


# A bulk load sends files up to this size in batches of up to this many documents, one
# task each: a small document's own cost (the task, the claim, the final transaction, an
# encode and an upsert) is then shared by the batch (README "Capacity", "Bulk loading":
# measured 32 against 1, a task per document; other sizes not tried). Larger files go
# alone: a batch must end well inside the task's time limit.
INGEST_BATCH_DOCUMENTS = 32
INGEST_BATCH_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class EnqueueResult:
    queued: bool
    message: str = ""


def ingest_enqueue(*, document_id: int) -> EnqueueResult:
    """Send the document to the ingestion queue; a broker that is down leaves it queued,
    marked, for the stale-ingestion reaper to send again."""
    return _send(INGEST_TASK, [document_id], args=[document_id])


def ingest_enqueue_many(*, documents: Sequence[Document]) -> EnqueueResult:
    """Send stored documents of a bulk load: the small ones in batches, each other alone.
    Not queued if any send failed (those documents are marked, as ingest_enqueue does)."""
    small = [d.pk for d in documents if d.size <= INGEST_BATCH_MAX_BYTES]
    results = [
        ingest_enqueue(document_id=d.pk) for d in documents if d.size > INGEST_BATCH_MAX_BYTES
    ]
    for start in range(0, len(small), INGEST_BATCH_DOCUMENTS):
        batch = small[start : start + INGEST_BATCH_DOCUMENTS]
        if len(batch) == 1:
            results.append(ingest_enqueue(document_id=batch[0]))
        else:
            results.append(_send(INGEST_BATCH_TASK, batch, args=[batch]))
    return next((r for r in results if not r.queued), EnqueueResult(queued=True))


def _send(task: str, document_ids: list[int], *, args: list[object]) -> EnqueueResult:
    try:
        app.send_task(
            task, args=args, retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2}
        )
    except Exception:  # kombu raises several types when the broker is down
        logger.exception("could not enqueue documents %s", document_ids)
        try:
            Document.objects.filter(pk__in=document_ids, status=Document.Status.QUEUED).update(
                failure_reason=QUEUE_UNAVAILABLE
            )
        except Exception:  # runs after commit: must not turn a stored upload into an error
            logger.exception("could not mark documents %s as waiting for the queue", document_ids)
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
