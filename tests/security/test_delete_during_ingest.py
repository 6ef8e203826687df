"""Attack: delete a document while a real worker is ingesting it, so that it stays findable.

Issue 15, item 3. A real Celery worker ingests into the real vector store owner process; the
test holds it at each point of the pipeline (tests/support/ingest_pause.py: a wait on a
Redis key at a stage boundary, nothing of the pipeline replaced), deletes the document
through the service the knowledge admin's page calls, lets the worker go on, and then asks
the store itself for any point of that document. Then 50 rounds of delete against a
running ingestion, at delays spread over the ingestion's whole length: none deadlocks,
none leaves a point.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files import File
from django.db import connection, connections, transaction

from apps.core.labels import Label
from apps.knowledge import dispatch, ingestion, services
from apps.knowledge.models import Collection, Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter
from tests.conftest import wait_for_documents
from tests.support.ingest_pause import IngestPause
from tests.support.worker import kill_worker, start_worker

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 50


@pytest.fixture(scope="module")
def pause(enclave_env, live_vectorstore, tmp_path_factory) -> Iterator[IngestPause]:
    """A real worker that a test can hold at one point of the pipeline."""
    log = tmp_path_factory.mktemp("pausable-worker") / "worker.log"
    proc = start_worker(
        env={**enclave_env, "ENCLAVE_INGEST_PAUSE": "1"},
        log=log,
        name="pausable",
        include=["tests.support.ingest_pause"],
    )
    yield IngestPause.from_env(enclave_env)
    kill_worker(proc)
    worker_log = log.read_text(errors="replace")
    assert "deadlock" not in worker_log.lower(), worker_log[-3000:]


@pytest.fixture
def admin() -> User:
    return User.objects.create_user("deleter", password="pw-deleter-1")


@pytest.fixture
def collection(admin: User) -> Collection:
    readers = Group.objects.create(name="Everyone who reads")
    return services.collection_create(
        name="Being deleted", actor=admin, default_label=Label.PUBLIC, groups=[readers]
    )


def _text(paragraphs: int, tag: str) -> str:
    topics = ["invoices", "robots", "warehouses", "batteries", "travel", "security", "payroll"]
    return "\n\n".join(
        f"Section {i} of the {tag} file explains how the {topics[i % 7]} process works. "
        f"Step {i}.1 checks the {topics[(i + 1) % 7]} ledger against the plan for {tag}. "
        f"Step {i}.2 records every exception with its owner, its date and its amount. "
        "Reviewers sign off once all open items are closed and the evidence is filed."
        for i in range(paragraphs)
    )


def _upload(collection: Collection, admin: User, path: Path, pause: IngestPause, point: str):
    # Armed for this document only, before its task is sent (on commit).
    with transaction.atomic(), path.open("rb") as fh:
        doc, _ = services.document_create(
            collection=collection, upload=File(fh, name=path.name), user=admin
        )
        if point:
            pause.arm(point, doc.pk)
    return doc


def _points_of(document_id: int, collection_id: int) -> list[str]:
    """Every point of the document, asked two ways: by its id, and among its collection's."""
    store = get_store()
    found: list[str] = []
    for flt in (Filter.of(document_id=[document_id]), Filter.of(collection_id=[collection_id])):
        offset = None
        while True:
            page, offset = store.scroll(flt, limit=500, offset=offset)
            found += [p.id for p in page if int(p.payload["document_id"]) == document_id]
            if offset is None:
                break
    assert len(found) == 2 * get_store().count(Filter.of(document_id=[document_id]))
    return found


def _large(tmp_path: Path, tag: str) -> Path:
    """A file of more than one upsert batch (checked where the worker is held)."""
    path = tmp_path / f"{tag}.txt"
    path.write_text(_text(200, tag))  # about 100 chunks
    return path


@pytest.mark.parametrize(
    "point", ["claim", "parse", "chunk", "embed_and_upsert", "upsert", "finish"]
)
def test_a_document_deleted_at_any_stage_of_its_ingestion_leaves_no_point(
    pause, collection, admin, tmp_path, point
):
    doc = _upload(collection, admin, _large(tmp_path, point), pause, point)
    pk = doc.pk
    assert pause.wait_paused() == pk
    written = get_store().count(Filter.of(document_id=[pk]))
    # Where the worker is held: nothing written before the upserts, one batch in the
    # middle of them, every batch (more than one) before the final check.
    if point == "finish":
        assert written > ingestion.UPSERT_BATCH
    else:
        assert written == (ingestion.UPSERT_BATCH if point == "upsert" else 0)

    services.document_delete(document=doc, actor=admin)
    assert _points_of(pk, collection.pk) == []  # gone at once, while the worker waits
    pause.resume()

    assert pause.wait_done(pk) == "returned"
    assert not Document.objects.filter(pk=pk).exists()
    assert _points_of(pk, collection.pk) == []


def test_the_worker_goes_on_while_the_delete_is_between_the_points_and_the_row(
    pause, collection, admin, tmp_path, monkeypatch
):
    """The interleaving the issue names: the delete has removed the points but not yet the
    row, and meanwhile the worker upserts its remaining batches and runs its final check.
    Made deterministic by letting the worker go at the delete's audit call (which comes
    between the two) and waiting until it has ended or waits on a lock."""
    doc = _upload(collection, admin, _large(tmp_path, "between"), pause, "upsert")
    pk = doc.pk
    assert pause.wait_paused() == pk
    record = services.audit_record

    def worker_goes_on_first(**kwargs: object) -> object:
        if kwargs.get("action") == "document.deleted":
            assert get_store().count(Filter.of(document_id=[pk])) == 0
            pause.resume()
            deadline = time.monotonic() + 60
            while pause.ended(pk) is None and not _backend_waiting_on_a_lock():
                assert time.monotonic() < deadline, "the worker neither ended nor waited"
                time.sleep(0.05)
        return record(**kwargs)

    monkeypatch.setattr(services, "audit_record", worker_goes_on_first)
    services.document_delete(document=doc, actor=admin)

    assert pause.wait_done(pk) == "returned"
    assert not Document.objects.filter(pk=pk).exists()
    assert _points_of(pk, collection.pk) == []


def _backend_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


def test_a_delete_while_the_worker_holds_the_row_to_finish_waits_and_then_removes_all(
    pause, collection, admin, tmp_path
):
    """The two paths' locks in one order: the worker holds the document row and is about
    to take the audit append lock; the delete must wait for the row first, not hold the
    append lock meanwhile (which would deadlock)."""
    doc = _upload(collection, admin, _large(tmp_path, "indexing"), pause, "indexing")
    pk = doc.pk
    assert pause.wait_paused() == pk
    assert get_store().count(Filter.of(document_id=[pk])) > ingestion.UPSERT_BATCH

    errors: list[BaseException] = []

    def delete() -> None:
        try:
            services.document_delete(document=doc, actor=admin)
        except BaseException as err:
            errors.append(err)
        finally:
            connections.close_all()

    deleter = threading.Thread(target=delete)
    deleter.start()
    deadline = time.monotonic() + 30
    while not _backend_waiting_on_a_lock():
        assert deleter.is_alive() and time.monotonic() < deadline, "the delete did not wait"
        time.sleep(0.05)
    pause.resume()
    deleter.join(timeout=60)
    assert not deleter.is_alive(), "the delete never finished"
    assert errors == []
    assert pause.wait_done(pk) == "returned"
    assert not Document.objects.filter(pk=pk).exists()
    assert _points_of(pk, collection.pk) == []


def test_fifty_deletes_racing_ingestion_never_deadlock_nor_leave_a_point(
    pause, collection, admin, tmp_path
):
    # How long one ingestion of such a file takes here, to spread the deletes over it.
    started = time.monotonic()
    first = _upload(collection, admin, _small(tmp_path, "calibration"), pause, "")
    wait_for_documents([first.pk], timeout=120)
    span = time.monotonic() - started
    assert pause.wait_done(first.pk) == "returned"

    failures: list[str] = []
    for n in range(ROUNDS):
        doc = _upload(collection, admin, _small(tmp_path, f"round {n}"), pause, "")
        pk = doc.pk
        delay = span * 1.3 * n / (ROUNDS - 1)
        errors: list[BaseException] = []

        def delete(doc: Document = doc, delay: float = delay, errors: list = errors) -> None:
            try:
                time.sleep(delay)
                services.document_delete(document=doc, actor=admin)
            except BaseException as err:
                errors.append(err)
            finally:
                connections.close_all()

        deleter = threading.Thread(target=delete)
        deleter.start()
        deleter.join(timeout=60)
        outcome = pause.wait_done(pk)
        left = _points_of(pk, collection.pk)
        if deleter.is_alive() or errors or outcome != "returned" or left:
            failures.append(
                f"round {n} (delete after {delay:.3f} s): delete "
                f"{'hung' if deleter.is_alive() else errors or 'ok'}, worker {outcome}, "
                f"{len(left)} points left"
            )
        assert not Document.objects.filter(pk=pk).exists()
    assert failures == []


def _small(tmp_path: Path, tag: str) -> Path:
    path = tmp_path / f"{tag.replace(' ', '-')}.txt"
    path.write_text(_text(6, tag))
    return path


@pytest.mark.parametrize("point", ["claim", "parse", "embed_and_upsert", "upsert", "finish"])
def test_a_document_deleted_in_the_middle_of_a_batch_leaves_no_point_and_the_rest_index(
    pause, collection, admin, tmp_path, point
):
    """A bulk load's batch (dispatch.ingest_enqueue_many) held at each stage for its second
    document, which is then deleted: the first and third are indexed all the same."""
    with transaction.atomic():
        docs = []
        for n in range(3):
            path = _small(tmp_path, f"batch {point} {n}")
            with path.open("rb") as fh:
                doc, _ = services.document_create(
                    collection=collection,
                    upload=File(fh, name=path.name),
                    user=admin,
                    enqueue=False,
                )
            docs.append(doc)
        pause.arm(point, docs[1].pk)
        transaction.on_commit(lambda: dispatch.ingest_enqueue_many(documents=docs))
    assert pause.wait_paused() == docs[1].pk

    services.document_delete(document=docs[1], actor=admin)
    assert _points_of(docs[1].pk, collection.pk) == []
    pause.resume()

    for doc in docs:
        assert pause.wait_done(doc.pk) == "returned"
    assert not Document.objects.filter(pk=docs[1].pk).exists()
    assert _points_of(docs[1].pk, collection.pk) == []
    for doc in (docs[0], docs[2]):
        doc.refresh_from_db()
        assert doc.status == Document.Status.INDEXED, doc.failure_reason
        assert len(_points_of(doc.pk, collection.pk)) == 2 * doc.chunk_count > 0
