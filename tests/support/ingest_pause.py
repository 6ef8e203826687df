"""Hold a real Celery worker at one point of the ingestion pipeline, from a test, via Redis.

Loaded into the worker only (`start_worker(include=["tests.support.ingest_pause"])`, which
is `celery worker --include ...`), before it forks its pool. It wraps the names the
pipeline looks up when it runs (`ingestion.STAGES`, `ingestion._heartbeat`,
`ingestion.audit_record`) with a wait, and changes nothing else: every stage runs as it
does in production. Nothing waits unless the test armed a point:

    pause = IngestPause.from_env(enclave_env)
    with transaction.atomic():          # the task is sent on commit, after arming
        doc, _ = document_create(...)
        pause.arm("finish", doc.pk)     # the worker will stop before _finish
    assert pause.wait_paused() == doc.pk
    ...                                 # delete, change a label, ...
    pause.resume()
    assert pause.wait_done(doc.pk) == "returned"

Points, in pipeline order:
    claim, parse, chunk, embed_and_upsert, finish   before that stage's function
    upsert      after the first batch of points is upserted, before its heartbeat
    indexing    inside _finish, holding the document's row lock, before its audit event

A point is armed for one document and holds its run once. Keys live under the session's
Celery key prefix, so parallel test sessions never see each other's.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from apps.knowledge import ingestion

POINTS = ("claim", "parse", "chunk", "embed_and_upsert", "upsert", "finish", "indexing")
WAIT_SECONDS = 120


class IngestPause:
    def __init__(self, url: str, prefix: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.key = f"{prefix}ingest-pause:"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestPause:
        return cls(env["CELERY_BROKER_URL"], env["CELERY_KEY_PREFIX"])

    # --- the test's side -------------------------------------------------------------

    def arm(self, point: str, document_id: int) -> None:
        if point not in POINTS:
            raise ValueError(f"unknown pause point {point!r}; one of {POINTS}")
        self.redis.delete(self.key + "paused", self.key + "resume")
        self.redis.set(self.key + "armed", f"{point}:{document_id}", ex=600)

    def wait_paused(self, timeout: float = WAIT_SECONDS) -> int:
        """The id of the document the worker is holding."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = self.redis.get(self.key + "paused")
            if held is not None:
                return int(held)
            time.sleep(0.05)
        raise AssertionError(f"the worker never reached {self.redis.get(self.key + 'armed')!r}")

    def resume(self) -> None:
        self.redis.rpush(self.key + "resume", b"go")
        self.redis.expire(self.key + "resume", 600)

    def ended(self, document_id: int) -> str | None:
        """How the worker's run over `document_id` ended ("returned", or "raised ..."),
        None while it has not."""
        state = self.redis.get(f"{self.key}done:{document_id}")
        return None if state is None else state.decode()

    def wait_done(self, document_id: int, timeout: float = WAIT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.ended(document_id)
            if state is not None:
                return state
            time.sleep(0.05)
        raise AssertionError(f"the worker's task for document {document_id} never ended")

    # --- the worker's side -----------------------------------------------------------

    def hold(self, point: str, document_id: int) -> None:
        armed = self.redis.get(self.key + "armed")
        if armed is None or armed.decode() != f"{point}:{document_id}":
            return
        self.redis.delete(self.key + "armed")  # once
        self.redis.set(self.key + "paused", document_id, ex=600)
        if self.redis.blpop([self.key + "resume"], timeout=WAIT_SECONDS) is None:
            raise RuntimeError(f"ingest pause at {point}: the test never resumed")

    def done(self, document_id: int, state: str) -> None:
        self.redis.set(f"{self.key}done:{document_id}", state, ex=600)


def _install() -> None:
    pause = IngestPause.from_env(os.environ)

    def before(stage: Callable[[Any], Any]) -> Callable[[Any], Any]:
        point = stage.__name__.lstrip("_")

        @functools.wraps(stage)
        def held(runs: Any) -> Any:
            for run in runs:
                pause.hold(point, run.document_id)
            return stage(runs)

        return held

    ingest = ingestion.documents_ingest
    heartbeat = ingestion._heartbeat
    record = ingestion.audit_record

    def recorded_ingest(*, document_ids: Any, worker: str = "") -> None:
        # The task turns an unexpected error into a failed document and ends normally, so
        # the outcome is taken here, where an error (a deadlock, ...) is still one.
        try:
            ingest(document_ids=document_ids, worker=worker)
        except BaseException as err:
            for document_id in document_ids:
                pause.done(document_id, f"raised {type(err).__name__}: {err}")
            raise
        for document_id in document_ids:
            pause.done(document_id, "returned")

    def held_heartbeat(document_ids: list[int]) -> set[int]:
        for document_id in document_ids:
            pause.hold("upsert", document_id)
        return heartbeat(document_ids)

    def held_record(**kwargs: Any) -> Any:
        if kwargs.get("action") == "document.indexed":
            pause.hold("indexing", kwargs["details"]["document_id"])
        return record(**kwargs)

    ingestion.STAGES = tuple(before(stage) for stage in ingestion.STAGES)
    # document_ingest runs documents_ingest, looked up here at call time.
    ingestion.documents_ingest = recorded_ingest
    ingestion._heartbeat = held_heartbeat
    ingestion.audit_record = held_record


# Set only in the environment of the worker a test starts with this module included.
if os.environ.get("ENCLAVE_INGEST_PAUSE") == "1":
    _install()
