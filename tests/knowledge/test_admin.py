"""The Django admin offers no delete: a document leaves only through document_delete,
which removes its points and records `document.deleted` (the knowledge pages use it).

Driven through the real admin as a superuser (pytest-django's `admin_client`); the
document goes through the real pipeline in this process into the session's vector store
owner, as in tests/search/test_retrieve.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.knowledge import ingestion, services
from apps.knowledge.models import Collection, Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("live_vectorstore")]

HANDBOOK = """# Warehouse robots

The Pathfinder robot's battery lasts nine hours on a single charge. Charging docks are
next to loading bay three.
"""


@pytest.fixture
def collection() -> Collection:
    readers = Group.objects.create(name="Admin-test readers")
    return services.collection_create(name="Admin test", actor=None, groups=[readers])


@pytest.fixture
def document(collection: Collection) -> Document:
    upload = SimpleUploadedFile("robots.md", HANDBOOK.encode(), content_type="text/markdown")
    doc, _ = services.document_create(
        collection=collection, upload=upload, user=None, label=Label.INTERNAL
    )
    ingestion.document_ingest(document_id=doc.pk)
    doc.refresh_from_db()
    assert doc.status == Document.Status.INDEXED, doc.failure_reason
    return doc


def _points(document: Document) -> int:
    return get_store().count(Filter.of(document_id=[document.pk]))


def _assert_still_there(document: Document) -> None:
    assert Document.objects.filter(pk=document.pk).exists()
    assert _points(document) == document.chunk_count > 0
    assert not AuditEvent.objects.filter(action="document.deleted").exists()


def test_admin_refuses_to_delete_a_document_and_its_points_stay(admin_client, document):
    url = reverse("admin:knowledge_document_delete", args=[document.pk])
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    _assert_still_there(document)

    change = admin_client.get(reverse("admin:knowledge_document_change", args=[document.pk]))
    assert change.status_code == 200
    assert url not in change.content.decode(), "no delete link on the document's page"


def test_admin_changelist_has_no_bulk_delete(admin_client, document):
    changelist = reverse("admin:knowledge_document_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200
    assert "delete_selected" not in page.content.decode()

    # Posting the action anyway (a stale page, a crafted request) deletes nothing.
    admin_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [document.pk], "post": "yes"},
    )
    _assert_still_there(document)


def test_admin_refuses_to_delete_a_collection(admin_client, document):
    collection = document.collection
    url = reverse("admin:knowledge_collection_delete", args=[collection.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    page = admin_client.get(reverse("admin:knowledge_collection_changelist"))
    assert "delete_selected" not in page.content.decode()
    assert Collection.objects.filter(pk=collection.pk).exists()
    _assert_still_there(document)
