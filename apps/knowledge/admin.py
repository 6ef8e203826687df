from django.contrib import admin

from apps.knowledge.models import Collection, Document


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "default_label", "created_at"]
    # Access changes go through the knowledge pages (audited, payloads synced).
    readonly_fields = ["groups"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "collection", "label", "status", "chunk_count", "created_at"]
    list_filter = ["status", "label", "collection"]
    readonly_fields = [f.name for f in Document._meta.fields]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False
