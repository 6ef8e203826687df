"""The blue/green re-index task: a version id in, apps/knowledge/reindex.py; safe to
run twice (a second run finds every document done and only marks the version ready),
and the start-up backfill of points from before embedder versions."""

from __future__ import annotations

import logging

from celery import signals

from apps.knowledge.reindex import embedder_backfill, version_build
from workers.celery import app

logger = logging.getLogger(__name__)


@app.task(acks_late=True, reject_on_worker_lost=True)
def reindex_task(version_id: int) -> None:
    version_build(version_id=version_id)


@signals.worker_ready.connect
def _backfill(**_kwargs: object) -> None:
    """Points from before embedder versions get the packaged model's version (once)."""
    try:
        embedder_backfill()
    except Exception:
        logger.exception("embedder backfill at start-up failed; run `manage.py embedder backfill`")
