"""Celery beat's retention task (apps/compliance/retention.py): one service call, safe to
run twice (a second run finds nothing left to remove)."""

from __future__ import annotations

from dataclasses import asdict

from apps.compliance.retention import retention_apply
from apps.core.celery import app


@app.task(acks_late=True, ignore_result=True)
def retention_task() -> dict[str, int]:
    return asdict(retention_apply())
