"""The worker side of the Celery app (apps/core/celery.py): pool sizing per process.
`celery -A workers.celery worker` loads this module; the app's `include` registers the
task modules."""

import os

from celery import signals
from django.conf import settings

from apps.core.celery import app

__all__ = ["app"]


# How many pool processes this worker runs; set in the parent before the pool forks.
_pool_size = 0


@signals.worker_init.connect
def _remember_pool_size(sender: object = None, **_kwargs: object) -> None:
    global _pool_size
    _pool_size = int(getattr(sender, "concurrency", 0) or 0)


@signals.worker_process_init.connect
def _share_cores(**_kwargs: object) -> None:
    """Give each pool process its share of the cores for torch.

    Documents are small and arrive one per task, so the encoder sees batches of a few
    chunks: two processes with one thread each keep both cores busy (and overlap one
    document's parsing and database writes with another's embedding), where one process
    with two threads leaves a core idle for everything but the matrix products.
    """
    if not settings.EMBEDDING_THREADS:
        settings.EMBEDDING_THREADS = max(1, (os.cpu_count() or 1) // max(_pool_size, 1))
