"""The Celery app. Task modules stay thin: ids in, one service call."""

import os

from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = Celery("enclave")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("ingest")),
    task_routes={"workers.ingest.*": {"queue": "ingest"}},
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    include=["workers.ingest"],
    beat_schedule={
        "reap-stale-ingestions": {"task": "workers.ingest.reap_stale_task", "schedule": 60.0},
    },
)


def _late_config() -> None:
    from django.conf import settings

    options: dict[str, object] = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}
    if settings.CELERY_KEY_PREFIX:
        # Several Enclaves (or test sessions) can share one Redis database apart.
        options["global_keyprefix"] = settings.CELERY_KEY_PREFIX
    app.conf.broker_transport_options = options


_late_config()


# How many pool processes this worker runs; set in the parent before the pool forks.
_pool_size = 0


@signals.worker_init.connect
def _remember_pool_size(sender=None, **_kwargs) -> None:  # noqa: ANN001
    global _pool_size
    _pool_size = int(getattr(sender, "concurrency", 0) or 0)


@signals.worker_process_init.connect
def _share_cores(**_kwargs) -> None:
    """Give each pool process its share of the cores for torch.

    Documents are small and arrive one per task, so the encoder sees batches of a few
    chunks: two processes with one thread each keep both cores busy (and overlap one
    document's parsing and database writes with another's embedding), where one process
    with two threads leaves a core idle for everything but the matrix products.
    """
    from django.conf import settings

    if not settings.EMBEDDING_THREADS:
        settings.EMBEDDING_THREADS = max(1, (os.cpu_count() or 1) // max(_pool_size, 1))
