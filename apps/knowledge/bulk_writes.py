"""Writing the same fields of many documents at once (the ingestion of a batch)."""

from __future__ import annotations

from collections.abc import Sequence

from apps.knowledge.models import Document


def update_rows(docs: Sequence[Document], fields: Sequence[str]) -> int:
    """`bulk_update(docs, fields)`, and the number of the rows still there.

    Fields that hold one value in every document are written by one plain UPDATE; only
    the others get bulk_update's CASE of a branch per row, which Django builds and
    PostgreSQL evaluates for each row and field (measured: most of a batch's status
    writes in a bulk load, where all but a document's text are the same).
    """
    if not docs:
        return 0
    first = docs[0]
    same = {
        name: getattr(first, name)
        for name in fields
        if all(getattr(doc, name) == getattr(first, name) for doc in docs)
    }
    differ = [name for name in fields if name not in same]
    found = None
    if same:
        found = Document.objects.filter(pk__in=[doc.pk for doc in docs]).update(**same)
    if differ:
        written = Document.objects.bulk_update(docs, differ)
        found = written if found is None else found
    return found or 0
