"""Upload → real Celery worker → real vector store owner, read back through the store."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files import File
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import reaper, services
from apps.knowledge.models import Collection, Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter
from tests.conftest import wait_for_documents
from tests.support import fixtures
from tests.support.vectorstore import start_vectorstore, stop_vectorstore

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


@pytest.fixture
def admin_user() -> User:
    user = User.objects.create_user("kadmin", password="pw-kadmin-1")
    user.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    return user


@pytest.fixture
def readers() -> Group:
    return Group.objects.create(name="Readers")


@pytest.fixture
def collection(readers: Group, admin_user: User) -> Collection:
    return services.collection_create(
        name="Handbook", actor=admin_user, default_label=Label.INTERNAL, groups=[readers]
    )


def _upload(client, collection: Collection, paths: list[Path], **extra: str) -> list[dict]:
    files = [p.open("rb") for p in paths]
    try:
        resp = client.post(
            reverse("knowledge:upload_files"),
            {"collection": collection.pk, "files": files, **extra},
            HTTP_ACCEPT="application/json",
        )
    finally:
        for f in files:
            f.close()
    assert resp.status_code == 200, resp.content
    return resp.json()["results"]


def _points(document_id: int) -> list:
    points, offset = [], None
    while True:
        page, offset = get_store().scroll(
            Filter.of(document_id=[document_id]), limit=256, offset=offset
        )
        points.extend(page)
        if offset is None:
            return points


def test_upload_is_indexed_with_payloads_read_back_from_the_store(
    client, admin_user, collection, readers, fixture_dir
):
    client.force_login(admin_user)
    md = fixtures.make_markdown(fixture_dir)
    pdf = fixtures.make_good_pdf(fixture_dir)
    results = _upload(client, collection, [md, pdf])
    assert [r["ok"] for r in results] == [True, True]
    docs = wait_for_documents([r["id"] for r in results])
    for doc in docs.values():
        assert doc.status == Document.Status.INDEXED, doc.failure_reason
        assert doc.label == Label.INTERNAL  # the collection's default
        points = _points(doc.pk)
        assert len(points) == doc.chunk_count > 0
        for p in points:
            payload = p.payload
            assert payload["document_id"] == doc.pk
            assert payload["collection_id"] == collection.pk
            assert payload["label"] == "internal"
            assert payload["groups"] == [readers.pk]
            # Offsets point at the exact passage inside the extracted text.
            assert doc.text[payload["char_start"] : payload["char_end"]] == payload["text"]
        assert sorted(p.payload["chunk_index"] for p in points) == list(range(doc.chunk_count))
    pdf_doc = next(d for d in docs.values() if d.mime_type == "application/pdf")
    assert {p.payload["page"] for p in _points(pdf_doc.pk)} >= {1, 2}
    md_doc = next(d for d in docs.values() if d.mime_type != "application/pdf")
    assert any(p.payload["section"] for p in _points(md_doc.pk)), "section titles travel"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"document.uploaded", "document.indexed"} <= actions


def test_reingest_yields_the_same_points_and_delete_removes_them(
    client, admin_user, collection, fixture_dir
):
    client.force_login(admin_user)
    [result] = _upload(client, collection, [fixtures.make_good_docx(fixture_dir)])
    doc = wait_for_documents([result["id"]])[result["id"]]
    assert doc.status == Document.Status.INDEXED, doc.failure_reason
    before = sorted(p.id for p in _points(doc.pk))

    services.document_reingest(document=doc, actor=admin_user)
    doc = wait_for_documents([doc.pk])[doc.pk]
    after = sorted(p.id for p in _points(doc.pk))
    assert after == before and len(after) == doc.chunk_count

    resp = client.post(reverse("knowledge:document_delete", args=[doc.pk]))
    assert resp.status_code == 302
    assert not Document.objects.filter(pk=doc.pk).exists()
    assert get_store().count(Filter.of(document_id=[doc.pk])) == 0
    assert AuditEvent.objects.filter(action="document.deleted").exists()


def test_label_and_access_changes_reach_the_points(client, admin_user, collection, fixture_dir):
    client.force_login(admin_user)
    [result] = _upload(client, collection, [fixtures.make_markdown(fixture_dir)])
    doc = wait_for_documents([result["id"]])[result["id"]]
    finance = Group.objects.create(name="Finance")

    client.post(reverse("knowledge:document_label", args=[doc.pk]), {"label": "public"})
    services.collection_set_access(collection=collection, groups=[finance], actor=admin_user)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        payloads = [p.payload for p in _points(doc.pk)]
        if all(p["label"] == "public" and p["groups"] == [finance.pk] for p in payloads):
            break
        time.sleep(0.25)
    assert payloads and all(p["label"] == "public" for p in payloads)
    assert all(p["groups"] == [finance.pk] for p in payloads)
    assert AuditEvent.objects.filter(action="document.label_changed").exists()


def test_bad_inputs_fail_with_a_sentence_and_leave_the_good_file_alone(
    client, admin_user, collection, fixture_dir
):
    client.force_login(admin_user)
    bad = {name: build(fixture_dir) for name, build in fixtures.BAD_INPUTS.items()}
    good = fixtures.make_html(fixture_dir)
    results = _upload(client, collection, [*bad.values(), good])
    by_name = {r["name"]: r for r in results}
    ids = [r["id"] for r in results if r["ok"]]
    docs = wait_for_documents(ids)
    good_doc = docs[by_name[good.name]["id"]]
    assert good_doc.status == Document.Status.INDEXED and good_doc.chunk_count > 0
    for name, fragment in fixtures.BAD_INPUT_MESSAGES.items():
        r = by_name[bad[name].name]
        if not r["ok"]:  # refused at upload time is fine too, with its sentence
            assert fragment in r["message"]
            continue
        doc = docs[r["id"]]
        assert doc.status == Document.Status.FAILED, name
        assert fragment in doc.failure_reason, (name, doc.failure_reason)
        assert "Traceback" not in doc.failure_reason
        assert _points(doc.pk) == [], (name, doc.pk)


def test_oversized_and_duplicate_uploads_are_refused_before_storing(
    client, admin_user, collection, fixture_dir, settings
):
    client.force_login(admin_user)
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    big = fixtures.make_sized_file(fixture_dir, size=1024 * 1024 + 1)
    md = fixtures.make_markdown(fixture_dir)
    first = _upload(client, collection, [big, md])
    assert first[0]["ok"] is False and "the limit is 1 MB" in first[0]["message"]
    assert first[1]["ok"] is True
    again = _upload(client, collection, [md])
    assert again[0]["ok"] is False and "already in Handbook" in again[0]["message"]
    assert Document.objects.filter(collection=collection).count() == 1
    wait_for_documents([first[1]["id"]])


def test_vector_store_down_then_back_loses_nothing(
    client, admin_user, collection, fixture_dir, live_vectorstore, enclave_env
):
    from django.conf import settings  # the module's tests take the `settings` fixture

    client.force_login(admin_user)
    [first] = _upload(client, collection, [fixtures.make_markdown(fixture_dir)])
    indexed = wait_for_documents([first["id"]])[first["id"]]
    kept = sorted(p.id for p in _points(indexed.pk))

    stop_vectorstore(live_vectorstore["proc"], sig=signal.SIGKILL)
    try:
        [second] = _upload(client, collection, [fixtures.make_html(fixture_dir)])
        # The worker cannot write: the document waits (queued, with the reason) and retries.
        deadline = time.monotonic() + 60
        waiting = Document.objects.get(pk=second["id"])
        while "vector store" not in waiting.failure_reason and time.monotonic() < deadline:
            time.sleep(0.2)
            waiting.refresh_from_db()
        assert waiting.status == Document.Status.QUEUED
        assert "Waiting for the vector store" in waiting.failure_reason
    finally:
        live_vectorstore["proc"] = start_vectorstore(
            settings.VECTOR_DATA_DIR, settings.VECTOR_SOCKET, env=enclave_env
        )
    doc = wait_for_documents([second["id"]], timeout=240)[second["id"]]
    assert doc.status == Document.Status.INDEXED, doc.failure_reason
    assert sorted(p.id for p in _points(indexed.pk)) == kept
    assert len(_points(doc.pk)) == doc.chunk_count


def test_ingest_dir_loads_a_folder(admin_user, collection, fixture_dir, capsys):
    fixtures.make_markdown(fixture_dir)
    fixtures.make_plain_text(fixture_dir)
    call_command("ingest_dir", str(fixture_dir), collection="Handbook", label="public")
    out = capsys.readouterr().out
    assert "2 indexed, 0 failed" in out
    assert set(Document.objects.values_list("label", flat=True)) == {"public"}


def test_stale_documents_are_requeued_and_finish(admin_user, collection, fixture_dir, settings):
    path = fixtures.make_plain_text(fixture_dir)
    with path.open("rb") as fh:
        doc, _ = services.document_create(
            collection=collection, upload=File(fh, name=path.name), user=admin_user
        )
    wait_for_documents([doc.pk])
    # Pretend a worker claimed it long ago and died: "embedding", silent for an hour.
    Document.objects.filter(pk=doc.pk).update(
        status=Document.Status.EMBEDDING,
        worker="gone@host",
        heartbeat_at=timezone.now() - timedelta(hours=1),
        attempts=1,
    )
    assert reaper.ingestion_reap_stale() == [doc.pk]
    assert wait_for_documents([doc.pk])[doc.pk].status == Document.Status.INDEXED

    Document.objects.filter(pk=doc.pk).update(
        status=Document.Status.PARSING,
        worker="gone@host",
        heartbeat_at=timezone.now() - timedelta(hours=1),
        attempts=settings.INGEST_MAX_ATTEMPTS,
    )
    assert reaper.ingestion_reap_stale() == []
    doc.refresh_from_db()
    assert doc.status == Document.Status.FAILED and "stopped" in doc.failure_reason


def test_upload_page_is_for_knowledge_admins_only(client, admin_user):
    url = reverse("knowledge:upload")
    assert client.get(url).status_code == 302
    employee = User.objects.create_user("emp", password="pw-emp-123")
    employee.groups.add(Group.objects.get(name=EMPLOYEE))
    client.force_login(employee)
    assert client.get(url).status_code == 403
    assert client.post(reverse("knowledge:upload_files")).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 200
