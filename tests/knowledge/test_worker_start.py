"""A pool process loads the embedding model before it takes work (workers/celery.py), and
one whose model does not load still starts and fails each document with a sentence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from apps.knowledge import services
from apps.knowledge.models import Document
from tests.conftest import wait_for_documents
from tests.support.worker import kill_worker, start_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _has_torch(pid: int) -> bool:
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        return False


def test_a_pool_process_has_the_model_loaded_before_any_task(enclave_env, tmp_path):
    worker = start_worker(env=enclave_env, log=tmp_path / "worker.log", name="preload")
    try:
        assert not _has_torch(worker.pid), "the parent forks without torch"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            children = _children(worker.pid)
            if children and all(_has_torch(pid) for pid in children):
                break
            time.sleep(0.5)
        else:
            pytest.fail("no pool process loaded the model without being sent a task")
        assert "did not load at process start" not in (tmp_path / "worker.log").read_text()
    finally:
        kill_worker(worker)


def test_a_model_that_does_not_load_fails_documents_with_a_sentence(
    enclave_env, live_vectorstore, tmp_path
):
    env = {**enclave_env, "EMBEDDING_MODEL": str(tmp_path / "no-such-model")}
    log = tmp_path / "worker.log"
    worker = start_worker(env=env, log=log, name="nomodel")
    try:
        collection = services.collection_create(name="No model", actor=None)
        doc, sent = services.document_create(
            collection=collection, upload=ContentFile(b"a note", name="note.txt"), user=None
        )
        assert sent.queued
        done = wait_for_documents([doc.pk], timeout=120)[doc.pk]
        assert done.status == Document.Status.FAILED
        assert done.failure_reason.startswith("Ingestion failed unexpectedly")
        assert "the worker log" in done.failure_reason
        assert "did not load at process start" in log.read_text()
        assert worker.poll() is None
    finally:
        kill_worker(worker)
