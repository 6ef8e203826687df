"""The worker side of the Celery app (apps/core/celery.py): pool sizing per process.
`celery -A workers.celery worker` loads this module; the app's `include` registers the
task modules."""

import logging
import os

from celery import signals
from django.conf import settings

from apps.core.celery import app
from apps.knowledge.chunking import chunk_sections
from apps.retrieval.embeddings import get_model

__all__ = ["app"]

logger = logging.getLogger(__name__)

# A pool process loads the embedding model before it says it is up (below), seconds of
# importing torch on a busy machine; Celery kills a process that is not up in 4 s.
app.conf.worker_proc_alive_timeout = 120.0


# How many pool processes this worker runs; set in the parent before the pool forks.
_pool_size = 0


@signals.worker_init.connect
def _remember_pool_size(sender: object = None, **_kwargs: object) -> None:
    global _pool_size
    _pool_size = int(getattr(sender, "concurrency", 0) or 0)


@signals.worker_process_init.connect
def _prepare_process(**_kwargs: object) -> None:
    """Give each pool process its share of the cores for torch, then load the embedding
    model with them, before the process says it is up (it takes no work until then).

    Documents are small and arrive one per task, so the encoder sees batches of a few
    chunks: two processes with one thread each keep both cores busy (and overlap one
    document's parsing and database writes with another's embedding), where one process
    with two threads leaves a core idle for everything but the matrix products.

    Loaded here, the model and the chunker are not loaded inside a process's first
    ingestion: that was ~10 s of imports per process, which a bulk load's first batches
    waited for (README "Capacity", "Bulk loading"). An embedder version's own model still
    loads when a task first needs it. A model that fails to load here is logged and left to fail
    the tasks that need it, each with its sentence, rather than the process start.
    """
    if not settings.EMBEDDING_THREADS:
        settings.EMBEDDING_THREADS = max(1, (os.cpu_count() or 1) // max(_pool_size, 1))
    try:
        get_model()
        # The chunker's first call imports llama-index, seconds more: made here too.
        chunk_sections(
            [],
            chunk_size=settings.CHUNK_SIZE_TOKENS,
            chunk_overlap=settings.CHUNK_OVERLAP_TOKENS,
        )
    except Exception:
        logger.exception("the embedding model or the chunker did not load at process start")
