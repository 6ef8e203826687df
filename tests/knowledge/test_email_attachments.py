"""Through the real pipeline (Celery worker, embedder, vector store): an e-mail's
attachments become documents of their own, and a scan is indexed by OCR."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files import File

from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Collection, Document
from apps.search.search import retrieve
from tests.conftest import wait_for_documents
from tests.support import formats as fm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


@pytest.fixture
def admin_user() -> User:
    user = User.objects.create_user("kadmin", password="pw-kadmin-1")
    user.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    return user


@pytest.fixture
def reader() -> User:
    user = User.objects.create_user("reader", password="pw-reader-1")
    user.groups.add(Group.objects.get(name=EMPLOYEE))
    user.groups.add(Group.objects.get_or_create(name="Sales")[0])
    return user


@pytest.fixture
def collection(admin_user: User, reader: User) -> Collection:
    return services.collection_create(
        name="Sales",
        actor=admin_user,
        default_label=Label.INTERNAL,
        groups=[Group.objects.get(name="Sales")],
    )


def _upload(collection: Collection, path: Path, user: User, **extra: str) -> Document:
    with path.open("rb") as fh:
        doc, _ = services.document_create(
            collection=collection, upload=File(fh, name=path.name), user=user, **extra
        )
    return doc


def test_attachments_are_documents_linked_to_the_message_and_found_as_attachments(
    tmp_path: Path, admin_user: User, reader: User, collection: Collection
) -> None:
    prices = fm.make_xlsx(tmp_path).read_bytes()
    memo = fm.make_odt(tmp_path).read_bytes()
    message = _upload(
        collection,
        fm.make_eml(tmp_path, attachments={"prices.xlsx": prices, "travel.odt": memo}),
        admin_user,
        label=Label.CONFIDENTIAL,
    )
    [message] = wait_for_documents([message.pk]).values()
    assert message.status == Document.Status.INDEXED, message.failure_reason
    assert message.metadata["subject"] == "Offer for Nordlys AS"
    assert message.metadata["from"] == "Ines Berg <ines@example.com>"

    children = list(Document.objects.filter(parent=message).order_by("original_name"))
    assert [c.original_name for c in children] == ["prices.xlsx", "travel.odt"]
    done = wait_for_documents([c.pk for c in children])
    for child in done.values():
        assert child.status == Document.Status.INDEXED, child.failure_reason
        assert child.collection_id == collection.pk
        assert child.label == Label.CONFIDENTIAL  # the message's, not the collection default
        assert child.uploaded_by_id == admin_user.pk
        assert child.title.endswith("(attachment of “Offer for Nordlys AS”)")

    # A member of the collection's group finds the row, cited as the attachment it is.
    result = retrieve(user=reader, question="What does plan B cost?", k=5)
    sheet = [h for h in result.hits if h.title.startswith("prices.xlsx (attachment of “Offer")]
    assert sheet, [h.title for h in result.hits]
    assert "Plan: B | Price: 20 EUR" in sheet[0].text

    # Ingesting the message again (a retry) adds no second copy of its attachments.
    services.document_reingest(document=message, actor=admin_user)
    wait_for_documents([message.pk])
    assert Document.objects.filter(parent=message).count() == 2
    assert AuditEvent.objects.filter(action="document.uploaded").count() == 3


def test_a_scan_is_indexed_by_ocr_and_says_so(
    tmp_path: Path, admin_user: User, collection: Collection
) -> None:
    doc = _upload(collection, fm.make_scanned_text_pdf(tmp_path, pages=2), admin_user)
    [doc] = wait_for_documents([doc.pk]).values()

    assert doc.status == Document.Status.INDEXED, doc.failure_reason
    assert doc.ocr_pages == 2
    assert doc.ocr_confidence is not None and doc.ocr_confidence > 80
    assert "Forklift drivers must renew their licence" in doc.text
