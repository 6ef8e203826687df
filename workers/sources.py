"""Celery tasks of synced folders (apps/knowledge/sync.py): beat's check for sources that
are due, and one source's sync (on demand or due). A second sync of one source waits for
the first on the source's lock, then finds nothing left to do."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from apps.knowledge.models import Source, SyncRun
from apps.knowledge.sync import source_sync, sources_due
from workers.celery import app


@app.task(acks_late=True, ignore_result=True)
def sync_source_task(
    source_id: int, actor_id: int | None = None, trigger: str = "schedule"
) -> int | None:
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return None
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    return source_sync(source=source, trigger=trigger, actor=actor).pk


@app.task(acks_late=True, ignore_result=True)
def sync_due_sources_task() -> list[int]:
    due = [s.pk for s in sources_due()]
    for pk in due:
        sync_source_task.delay(pk, trigger=SyncRun.Trigger.SCHEDULE)
    return due
