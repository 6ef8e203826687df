"""Versions: an upload under a current document's name, through the real worker and store.

The swap is checked from the reader's side: while version 2 is ingested and version 1's
points are removed, every search finds exactly one version, never none and never both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from apps.assistant.services import _passage
from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services, versions
from apps.knowledge.models import Collection, Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter
from apps.search.search import retrieve
from tests.conftest import wait_for_documents

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]

QUESTION = "annual membership fee of the rowing club"
V1 = b"# Rowing club fees\n\nThe annual membership fee of the rowing club is ten euros.\n"
V2 = b"# Rowing club fees\n\nThe annual membership fee of the rowing club is twenty euros.\n"


@pytest.fixture
def admin_user() -> User:
    user = User.objects.create_user("vadmin", password="pw-vadmin-1")
    user.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    return user


@pytest.fixture
def reader() -> User:
    user = User.objects.create_user("vreader", password="pw-vreader-1")
    user.groups.add(Group.objects.get(name=EMPLOYEE))
    return user


@pytest.fixture
def collection(admin_user: User, reader: User) -> Collection:
    readers = Group.objects.create(name="Rowers")
    reader.groups.add(readers)
    return services.collection_create(
        name="Club", actor=admin_user, default_label=Label.INTERNAL, groups=[readers]
    )


def _upload(client, collection: Collection, path: Path) -> dict:
    with path.open("rb") as handle:
        resp = client.post(
            reverse("knowledge:upload_files"),
            {"collection": collection.pk, "files": [handle]},
            HTTP_ACCEPT="application/json",
        )
    assert resp.status_code == 200, resp.content
    [result] = resp.json()["results"]
    return result


def _write(tmp_path: Path, data: bytes, name: str = "fees.md") -> Path:
    folder = tmp_path / f"v{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return path


def _found(reader: User) -> set[int]:
    return {h.document_id for h in retrieve(user=reader, question=QUESTION, mode="sparse").hits}


def test_new_version_swaps_in_with_never_none_and_never_both(
    client, admin_user, reader, collection, tmp_path
):
    client.force_login(admin_user)
    first = _upload(client, collection, _write(tmp_path, V1))
    v1 = wait_for_documents([first["id"]])[first["id"]]
    assert v1.status == Document.Status.INDEXED, v1.failure_reason
    assert _found(reader) == {v1.pk}

    second = _upload(client, collection, _write(tmp_path, V2))
    assert second["ok"] and second["version"] == 2
    seen: list[frozenset[int]] = []
    deadline = timezone.now().timestamp() + 180
    while timezone.now().timestamp() < deadline:
        found = frozenset(_found(reader))
        assert len(found) == 1, f"search found {sorted(found)}: none or both versions"
        if not seen or seen[-1] != found:
            seen.append(found)
        v1.refresh_from_db()
        if v1.superseded_at is not None and found == {second["id"]}:
            break
    assert seen[-1] == {second["id"]}, seen
    assert seen[0] == {v1.pk}, "the old version answered while the new one was indexed"

    v2 = Document.objects.get(pk=second["id"])
    assert v2.status == Document.Status.INDEXED and v2.version == 2
    assert v2.first_version_id == v1.pk and v2.superseded_at is None
    assert get_store().count(Filter.of(document_id=[v1.pk])) == 0
    payloads = [p.payload for p in get_store().scroll(Filter.of(document_id=[v2.pk]), limit=50)[0]]
    assert payloads and {p["version"] for p in payloads} == {2}
    # The old version keeps its text (old citations still open) and leaves the list.
    assert "ten euros" in v1.text
    listed = client.get(reverse("knowledge:status"), {"collection": collection.pk}).json()
    assert [d["id"] for d in listed["documents"]] == [v2.pk]

    [uploaded] = [
        e
        for e in AuditEvent.objects.filter(action="document.uploaded")
        if e.details["version"] == 2
    ]
    assert uploaded.details["replaces"] == v1.pk
    superseded = AuditEvent.objects.get(action="document.version_superseded")
    assert superseded.details["document_id"] == v1.pk
    assert superseded.details["superseded_by"] == v2.pk
    assert superseded.details["sha256"] == v1.sha256


def test_citation_names_the_version(client, admin_user, reader, collection, tmp_path):
    client.force_login(admin_user)
    ids = [_upload(client, collection, _write(tmp_path, data))["id"] for data in (V1,)]
    wait_for_documents(ids)
    second = _upload(client, collection, _write(tmp_path, V2))
    wait_for_documents([second["id"]])
    hits = retrieve(user=reader, question=QUESTION, mode="sparse").hits
    assert hits and {h.version for h in hits} == {2}
    assert _passage(hits[0])["version"] == 2


def test_versions_page_lists_history_and_admins_download_each(
    client, admin_user, reader, collection, tmp_path
):
    client.force_login(admin_user)
    first = _upload(client, collection, _write(tmp_path, V1))
    wait_for_documents([first["id"]])
    second = _upload(client, collection, _write(tmp_path, V2))
    wait_for_documents([second["id"]])
    v1, v2 = Document.objects.get(pk=first["id"]), Document.objects.get(pk=second["id"])

    page = client.get(reverse("knowledge:document_versions", args=[v1.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index('data-version="2"') < html.index('data-version="1"')  # newest first
    assert v1.sha256 in html and v2.sha256 in html and "vadmin" in html
    assert "Superseded" in html

    download = client.get(reverse("knowledge:document_download", args=[v1.pk]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == V1
    event = AuditEvent.objects.filter(action="document.downloaded").latest("pk")
    assert event.details["document_id"] == v1.pk and event.details["version"] == 1

    client.force_login(reader)
    assert client.get(reverse("knowledge:document_versions", args=[v1.pk])).status_code == 403


def test_failed_new_version_leaves_the_current_one_answering(
    client, admin_user, reader, collection, tmp_path
):
    client.force_login(admin_user)
    first = _upload(client, collection, _write(tmp_path, V1))
    wait_for_documents([first["id"]])
    broken = _upload(client, collection, _write(tmp_path, b"\n\n   \n"))
    failed = wait_for_documents([broken["id"]])[broken["id"]]
    assert failed.status == Document.Status.FAILED and failed.version == 2
    v1 = Document.objects.get(pk=first["id"])
    assert v1.superseded_at is None
    assert _found(reader) == {v1.pk}
    assert get_store().count(Filter.of(document_id=[v1.pk])) == v1.chunk_count > 0


def test_reverting_to_old_content_is_a_new_version_not_a_duplicate(
    client, admin_user, collection, tmp_path
):
    client.force_login(admin_user)
    ids = []
    for data in (V1, V2, V1):
        result = _upload(client, collection, _write(tmp_path, data))
        assert result["ok"], result["message"]
        ids.append(result["id"])
        wait_for_documents([result["id"]])
    assert [Document.objects.get(pk=i).version for i in ids] == [1, 2, 3]
    current = Document.objects.filter(collection=collection, superseded_at__isnull=True)
    assert list(current.values_list("pk", flat=True)) == [ids[2]]
    # The same content twice among current documents is still refused.
    again = _upload(client, collection, _write(tmp_path, V1, name="copy.md"))
    assert not again["ok"] and "same content" in again["message"]


def test_search_hides_an_older_version_from_the_commit_that_indexes_the_newer(
    admin_user, collection
):
    """The moment between the swap's commit and the old points' removal, read directly."""
    old = Document.objects.create(
        collection=collection, title="t", original_name="x.md", sha256="a" * 64, size=1,
        label=Label.INTERNAL, status=Document.Status.INDEXED,
    )  # fmt: skip
    new = Document.objects.create(
        collection=collection, title="t", original_name="x.md", sha256="b" * 64, size=1,
        label=Label.INTERNAL, status=Document.Status.EMBEDDING, version=2, first_version=old,
    )  # fmt: skip
    # While the new version is embedded, its first points must not answer beside the old.
    assert versions.hidden_ids([old.pk, new.pk]) == {new.pk}
    Document.objects.filter(pk=new.pk).update(status=Document.Status.INDEXED)
    assert versions.hidden_ids([old.pk, new.pk]) == {old.pk}
    Document.objects.filter(pk=new.pk).update(status=Document.Status.FAILED)
    assert versions.hidden_ids([old.pk, new.pk]) == {new.pk}
    # Once the old one is superseded, a re-ingest of the new one hides nothing of it.
    Document.objects.filter(pk=old.pk).update(superseded_at=timezone.now())
    Document.objects.filter(pk=new.pk).update(status=Document.Status.EMBEDDING)
    assert versions.hidden_ids([old.pk, new.pk]) == {old.pk}
