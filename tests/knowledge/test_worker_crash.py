"""A worker SIGKILLed in the middle of embedding: the document still ends exactly right."""

from __future__ import annotations

import signal
import time

import pytest
from django.contrib.auth.models import Group, User
from django.core.files import File

from apps.knowledge import dispatch, ingestion, services
from apps.knowledge.models import Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter
from tests.conftest import wait_for_documents
from tests.support.worker import kill_worker, start_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _long_text(paragraphs: int) -> str:
    topics = ["invoices", "robots", "warehouses", "batteries", "travel", "security", "payroll"]
    return "\n\n".join(
        f"Section {i} explains how the {topics[i % len(topics)]} process works in detail. "
        f"Step {i}.1 checks the {topics[(i + 1) % len(topics)]} ledger against the plan. "
        f"Step {i}.2 records every exception with its owner, its date and its amount. "
        "Reviewers sign off once all open items are closed and the evidence is filed."
        for i in range(paragraphs)
    )


def test_worker_killed_mid_embedding_then_restarted_indexes_exactly_once(
    enclave_env, live_vectorstore, tmp_path
):
    admin = User.objects.create_user("crash-admin", password="pw-crash-1")
    readers = Group.objects.create(name="Crash readers")
    collection = services.collection_create(name="Crash", actor=admin, groups=[readers])
    path = tmp_path / "long.txt"
    path.write_text(_long_text(1200))
    expected_chunks = len(ingestion.document_chunks(path=path)[1])
    assert expected_chunks > 100, "the document must take a while to embed"

    log = tmp_path / "worker.log"
    worker = start_worker(env=enclave_env, log=log, name="crashy")
    try:
        with path.open("rb") as fh:
            doc, _ = services.document_create(
                collection=collection, upload=File(fh, name="long.txt"), user=admin
            )
        store = get_store()
        deadline = time.monotonic() + 180
        # Wait until the worker is embedding and has written part of the points.
        while time.monotonic() < deadline:
            doc.refresh_from_db()
            written = store.count(Filter.of(document_id=[doc.pk]))
            if doc.status == Document.Status.EMBEDDING and 0 < written < expected_chunks:
                break
            assert doc.status != Document.Status.INDEXED, "finished before it could be killed"
            time.sleep(0.05)
        else:
            raise AssertionError(f"never saw the document mid-embedding: {doc.status}")
    finally:
        kill_worker(worker, sig=signal.SIGKILL)

    doc.refresh_from_db()
    assert doc.status == Document.Status.EMBEDDING  # orphaned by the dead worker

    # Same worker name: on start it knows it cannot be working on what it had claimed.
    worker = start_worker(env=enclave_env, log=log, name="crashy")
    try:
        doc = wait_for_documents([doc.pk], timeout=300)[doc.pk]
    finally:
        kill_worker(worker)
    assert doc.status == Document.Status.INDEXED, doc.failure_reason
    assert doc.chunk_count == expected_chunks
    ids, offset = [], None
    while True:
        page, offset = get_store().scroll(Filter.of(document_id=[doc.pk]), limit=500, offset=offset)
        ids.extend(p.id for p in page)
        if offset is None:
            break
    assert len(ids) == len(set(ids)) == expected_chunks
    assert doc.attempts == 2


def test_worker_killed_mid_batch_then_restarted_indexes_every_document_exactly_once(
    enclave_env, live_vectorstore, tmp_path
):
    """A bulk load's batch (dispatch.ingest_enqueue_many) killed while its points are half
    written: on restart each document is indexed once, with exactly its chunks' points."""
    collection = services.collection_create(name="Crash batch", actor=None)
    docs, expected = [], {}
    for n in range(dispatch.INGEST_BATCH_DOCUMENTS):
        path = tmp_path / f"part-{n}.txt"
        path.write_text(f"Part {n}.\n\n" + _long_text(12))
        assert path.stat().st_size <= dispatch.INGEST_BATCH_MAX_BYTES
        with path.open("rb") as fh:
            doc, _ = services.document_create(
                collection=collection, upload=File(fh, name=path.name), user=None, enqueue=False
            )
        docs.append(doc)
        expected[doc.pk] = len(ingestion.document_chunks(path=path)[1])
    total = sum(expected.values())
    assert total > 2 * ingestion.UPSERT_BATCH, "the batch must take several upserts"

    log = tmp_path / "worker.log"
    worker = start_worker(env=enclave_env, log=log, name="crashy-batch")
    try:
        assert dispatch.ingest_enqueue_many(documents=docs).queued
        store, deadline = get_store(), time.monotonic() + 180
        while time.monotonic() < deadline:
            written = store.count(Filter.of(collection_id=[collection.pk]))
            if 0 < written < total:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("never saw the batch mid-embedding")
    finally:
        kill_worker(worker, sig=signal.SIGKILL)
    ids = list(expected)
    assert Document.objects.filter(pk__in=ids, status=Document.Status.EMBEDDING).count() == len(
        ids
    ), "the batch's documents are orphaned together"

    worker = start_worker(env=enclave_env, log=log, name="crashy-batch")
    try:
        done = wait_for_documents(ids, timeout=300)
    finally:
        kill_worker(worker)
    for pk, doc in done.items():
        assert doc.status == Document.Status.INDEXED, doc.failure_reason
        assert doc.chunk_count == expected[pk]
        point_ids, offset = [], None
        while True:
            page, offset = get_store().scroll(Filter.of(document_id=[pk]), limit=500, offset=offset)
            point_ids.extend(p.id for p in page)
            if offset is None:
                break
        assert len(point_ids) == len(set(point_ids)) == expected[pk]
    assert "ingest_documents_task" in log.read_text(errors="replace")
