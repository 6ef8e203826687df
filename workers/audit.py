"""Celery beat's audit tasks: seal the chain head, feed the SIEM. Each calls one service;
both are safe to run twice (a second sealer waits for the first and seals the same head
again; a second feeder finds the lock taken and writes nothing)."""

from __future__ import annotations

from apps.audit.seal import audit_seal
from apps.audit.siem import siem_feed_run
from apps.core.celery import app


@app.task(acks_late=True, ignore_result=True)
def seal_task() -> int:
    return audit_seal().seal.seq


@app.task(acks_late=True, ignore_result=True)
def siem_feed_task() -> int:
    return siem_feed_run()
