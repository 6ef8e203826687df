"""update_rows writes every field of every document, whether the field's value is shared
by all of them (one UPDATE) or differs (bulk_update), and counts the rows still there."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from apps.knowledge import services
from apps.knowledge.bulk_writes import update_rows
from apps.knowledge.models import Document

pytestmark = pytest.mark.django_db(transaction=True)


def _docs(count: int) -> list[Document]:
    collection = services.collection_create(name="Rows", actor=None)
    return [
        services.document_create(
            collection=collection,
            upload=ContentFile(f"row {n}".encode(), name=f"row-{n}.txt"),
            user=None,
            enqueue=False,
        )[0]
        for n in range(count)
    ]


def test_shared_and_differing_values_are_all_written():
    docs = _docs(3)
    for n, doc in enumerate(docs):
        doc.status = Document.Status.EMBEDDING  # the same for all
        doc.text = f"text of {n}"  # differs
        doc.chunk_count = 1 if n else 2  # differs in one
    assert update_rows(docs, ["status", "text", "chunk_count"]) == 3
    stored = {d.pk: d for d in Document.objects.filter(pk__in=[d.pk for d in docs])}
    for n, doc in enumerate(docs):
        row = stored[doc.pk]
        assert (row.status, row.text, row.chunk_count) == (
            "embedding",
            f"text of {n}",
            doc.chunk_count,
        )


@pytest.mark.parametrize("fields", [["status"], ["text"], ["status", "text"]])
def test_a_row_deleted_meanwhile_is_not_counted(fields):
    docs = _docs(3)
    for n, doc in enumerate(docs):
        doc.status, doc.text = Document.Status.PARSING, f"t{n}"
    Document.objects.filter(pk=docs[1].pk).delete()
    assert update_rows(docs, fields) == 2
    assert update_rows([], fields) == 0
