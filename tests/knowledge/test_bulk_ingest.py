"""A bulk load's small files go in batches (dispatch.ingest_enqueue_many): one task, one
claim, one encode, one final transaction for several documents, and each of them still
ends as it would alone, through the real worker and vector store owner."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files import File
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.knowledge import bulk_uploads, dispatch, ingestion, reaper, services
from apps.knowledge.management.commands import ingest_dir as ingest_dir_command
from apps.knowledge.models import Collection, Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter
from tests.conftest import wait_for_documents
from tests.support import fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


@pytest.fixture
def collection() -> Collection:
    return services.collection_create(name="Bulk", actor=None)


def _notes(directory: Path, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = directory / f"note-{n}.txt"
        path.write_text(f"Note {n} of the bulk load: the parking badge {n} opens gate {n % 7}.\n")
        paths.append(path)
    return paths


def _stored(collection: Collection, paths: list[Path]) -> list[Document]:
    docs = []
    for path in paths:
        with path.open("rb") as fh:
            doc, _ = services.document_create(
                collection=collection, upload=File(fh, name=path.name), user=None, enqueue=False
            )
        docs.append(doc)
    return docs


def _point_ids(document_id: int) -> list[str]:
    ids, offset = [], None
    while True:
        page, offset = get_store().scroll(
            Filter.of(document_id=[document_id]), limit=256, offset=offset
        )
        ids.extend(p.id for p in page)
        if offset is None:
            return sorted(ids)


def _events(action: str, document_id: int) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=action, target_type="knowledge.document", target_id=str(document_id)
        )
    )


def test_ingest_dir_batches_small_files_and_a_broken_one_fails_alone(collection, fixture_dir):
    good = _notes(fixture_dir, 5)
    latin1 = fixtures.make_latin1_text(fixture_dir)
    corrupt = fixtures.make_corrupt_pdf(fixture_dir)
    (fixture_dir / "same-as-note-0.txt").write_bytes(good[0].read_bytes())
    out = io.StringIO()
    call_command("ingest_dir", str(fixture_dir), collection="Bulk", stdout=out)
    assert "5 indexed, 2 failed, 1 refused" in out.getvalue()
    assert not Document.objects.filter(original_name="same-as-note-0.txt").exists()

    by_name = {d.original_name: d for d in Document.objects.filter(collection=collection)}
    indexed = [by_name[p.name] for p in good]
    for doc in indexed:
        assert doc.status == Document.Status.INDEXED, doc.failure_reason
        assert len(_point_ids(doc.pk)) == doc.chunk_count == 1
        assert len(_events("document.indexed", doc.pk)) == 1
        assert len(_events("document.uploaded", doc.pk)) == 1
    # Finished in one transaction, so in one batch: the same moment for all of them.
    assert len({doc.indexed_at for doc in indexed}) == 1
    for path, name in ((latin1, "latin1_text"), (corrupt, "corrupt_pdf")):
        doc = by_name[path.name]
        assert doc.status == Document.Status.FAILED
        assert fixtures.BAD_INPUT_MESSAGES[name] in doc.failure_reason
        assert f"failed {path.name}: {doc.failure_reason}" in out.getvalue()
        assert _point_ids(doc.pk) == []
        [failed] = _events("document.failed", doc.pk)
        assert failed.details["reason"] == doc.failure_reason
        assert _events("document.indexed", doc.pk) == []


def test_a_batch_run_again_writes_the_same_points_and_a_finished_one_changes_nothing(
    collection, fixture_dir
):
    docs = _stored(collection, _notes(fixture_dir, 3))
    ids = [d.pk for d in docs]
    ingestion.documents_ingest(document_ids=ids, worker="here")
    first = {pk: _point_ids(pk) for pk in ids}
    assert all(len(points) == 1 for points in first.values())

    # Finished: running it again writes nothing and records nothing.
    events = AuditEvent.objects.count()
    ingestion.documents_ingest(document_ids=ids, worker="here")
    assert AuditEvent.objects.count() == events

    # Left mid-way by a lost worker, then run again: exactly the same point ids.
    Document.objects.filter(pk__in=ids).update(status=Document.Status.EMBEDDING)
    ingestion.documents_ingest(document_ids=ids, worker="here")
    assert {pk: _point_ids(pk) for pk in ids} == first
    for pk in ids:
        assert Document.objects.get(pk=pk).status == Document.Status.INDEXED
        assert len(_events("document.indexed", pk)) == 2


def test_a_batch_stopped_unexpectedly_sends_each_unfinished_document_alone(collection, fixture_dir):
    docs = _stored(collection, _notes(fixture_dir, 3))
    ingestion.document_ingest(document_id=docs[0].pk)
    # The other two as a batch leaves them when its worker stops: claimed, not finished.
    Document.objects.filter(pk__in=[d.pk for d in docs[1:]]).update(
        status=Document.Status.PARSING, worker="stopped@host", attempts=1
    )
    sent = reaper.ingestion_requeue_alone(document_ids=[d.pk for d in docs])
    assert sent == [d.pk for d in docs[1:]]
    done = wait_for_documents(sent)
    for pk in sent:
        assert done[pk].status == Document.Status.INDEXED, done[pk].failure_reason
        assert len(_point_ids(pk)) == done[pk].chunk_count == 1
        assert len(_events("document.indexed", pk)) == 1
    assert len(_events("document.indexed", docs[0].pk)) == 1


def test_large_files_of_a_bulk_load_go_alone(collection, fixture_dir):
    small = _stored(collection, _notes(fixture_dir, 2))
    big_path = fixture_dir / "big.txt"
    big_path.write_text("A long policy. " * (dispatch.INGEST_BATCH_MAX_BYTES // 15 + 1))
    [big] = _stored(collection, [big_path])
    assert big.size > dispatch.INGEST_BATCH_MAX_BYTES
    assert dispatch.ingest_enqueue_many(documents=[*small, big]).queued
    done = wait_for_documents([d.pk for d in (*small, big)])
    assert {d.status for d in done.values()} == {Document.Status.INDEXED}
    # The small two finished together, the large one in a task of its own.
    assert done[small[0].pk].indexed_at == done[small[1].pk].indexed_at
    assert done[big.pk].indexed_at != done[small[0].pk].indexed_at


def test_a_group_that_does_not_commit_stores_nothing_and_removes_its_files(
    collection, fixture_dir, settings
):
    media = Path(settings.MEDIA_ROOT)
    before = {p for p in media.rglob("*") if p.is_file()}
    [good] = _notes(fixture_dir, 1)
    with good.open("rb") as fh:
        unreadable = File(fh, name="closed.txt")
    with good.open("rb") as fh, pytest.raises(ValueError):
        bulk_uploads.documents_create(
            collection=collection, uploads=[File(fh, name=good.name), unreadable], user=None
        )
    assert not Document.objects.filter(collection=collection).exists()
    assert {p for p in media.rglob("*") if p.is_file()} == before


def test_ingest_dir_follows_to_the_last_document_past_its_window(
    collection, fixture_dir, monkeypatch
):
    monkeypatch.setattr(ingest_dir_command, "FOLLOW_WINDOW", 2)
    _notes(fixture_dir, 5)
    out = io.StringIO()
    call_command("ingest_dir", str(fixture_dir), collection="Bulk", stdout=out)
    assert "5 indexed, 0 failed, 0 refused" in out.getvalue()
    statuses = Document.objects.filter(collection=collection).values_list("status", flat=True)
    assert sorted(statuses) == ["indexed"] * 5
