"""The Celery app, low enough that any app may send a task by name through it
(`app.send_task("workers.ingest.…")`) without importing the task modules above it.
workers/celery.py adds the worker-only wiring; `celery -A workers.celery` runs it."""

import os

from celery import Celery
from django.conf import settings
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = Celery("enclave")
# The default app in every thread, so nothing falls back to a fresh, unconfigured one.
app.set_default()
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
    include=[
        "workers.ingest",
        "workers.audit",
        "workers.retention",
        "workers.sources",
        "workers.embedder",
    ],
    beat_schedule={
        "reap-stale-ingestions": {"task": "workers.ingest.reap_stale_task", "schedule": 60.0},
    },
)


def _late_config() -> None:
    options: dict[str, object] = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}
    if settings.CELERY_KEY_PREFIX:
        # Several Enclaves (or test sessions) can share one Redis database apart.
        options["global_keyprefix"] = settings.CELERY_KEY_PREFIX
    app.conf.broker_transport_options = options
    # The audit chain's seal and the SIEM feed (README "Compliance"); a run that is due
    # again before it started is dropped rather than queued behind the next.
    seal, feed = settings.AUDIT_SEAL_INTERVAL_SECONDS, settings.SIEM_FEED_INTERVAL_SECONDS
    app.conf.beat_schedule = {
        **app.conf.beat_schedule,
        "audit-seal": {
            "task": "workers.audit.seal_task",
            "schedule": float(seal),
            "options": {"expires": seal},
        },
        "siem-feed": {
            "task": "workers.audit.siem_feed_task",
            "schedule": float(feed),
            "options": {"expires": feed},
        },
        # Retention periods (apps/compliance/retention.py); a no-op while all are 0.
        "retention": {
            "task": "workers.retention.retention_task",
            "schedule": float(settings.RETENTION_INTERVAL_SECONDS),
            "options": {"expires": settings.RETENTION_INTERVAL_SECONDS},
        },
        # Synced folders that are due (apps/knowledge/sync.py); each has its own interval.
        "sources": {
            "task": "workers.sources.sync_due_sources_task",
            "schedule": float(settings.SOURCE_SYNC_CHECK_SECONDS),
            "options": {"expires": settings.SOURCE_SYNC_CHECK_SECONDS},
        },
    }


_late_config()
