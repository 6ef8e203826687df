"""Django admin for collections and documents: for looking, not for changing access.

Deleting a document must remove its points from the vector store and record
`document.deleted`; the knowledge pages do both (services.document_delete) and say in
words when the store is down. The admin offers no delete, so that there is one way to
remove a document and it is the audited one; a collection has no delete anywhere.
"""

from django.contrib import admin
from django.http import HttpRequest

from apps.knowledge.models import Collection, Document


class _NoDeleteAdmin(admin.ModelAdmin):
    """No delete button, no delete page (403) and no "delete selected" action."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Collection)
class CollectionAdmin(_NoDeleteAdmin):
    list_display = ["name", "default_label", "created_at"]
    # Access changes go through the knowledge pages (audited, payloads synced).
    readonly_fields = ["groups"]


@admin.register(Document)
class DocumentAdmin(_NoDeleteAdmin):
    list_display = ["title", "collection", "label", "status", "chunk_count", "created_at"]
    list_filter = ["status", "label", "collection"]
    readonly_fields = [f.name for f in Document._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
