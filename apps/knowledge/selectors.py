"""Reads for the knowledge admin's pages."""

from django.db.models import QuerySet

from apps.knowledge.models import Collection, Document


def collections_for_admin() -> QuerySet[Collection]:
    return Collection.objects.prefetch_related("groups").order_by("name")


def documents_in(collection: Collection, *, limit: int = 200) -> QuerySet[Document]:
    return (
        Document.objects.filter(collection=collection)
        .select_related("uploaded_by")
        .order_by("-created_at", "-id")[:limit]
    )


def document_status_row(doc: Document) -> dict[str, object]:
    return {
        "id": doc.pk,
        "title": doc.title,
        "name": doc.original_name,
        "status": doc.status,
        "status_display": doc.get_status_display(),
        "reason": doc.failure_reason,
        "label": doc.label,
        "chunks": doc.chunk_count,
        "mime_type": doc.mime_type,
        "size": doc.size,
        "uploaded_at": doc.created_at.isoformat(),
    }
