from django.urls import path

from apps.knowledge import embedder_views, sources_views, versions_views, views

app_name = "knowledge"

urlpatterns = [
    path("embedders/", embedder_views.embedders, name="embedders"),
    path(
        "embedders/<int:version_id>/reindex/",
        embedder_views.embedder_action,
        {"action": "reindex"},
        name="embedder_reindex",
    ),
    path(
        "embedders/<int:version_id>/activate/",
        embedder_views.embedder_action,
        {"action": "activate"},
        name="embedder_activate",
    ),
    path(
        "embedders/<int:version_id>/drop/",
        embedder_views.embedder_action,
        {"action": "drop"},
        name="embedder_drop",
    ),
    path("", views.upload_page, name="upload"),
    path("upload/", views.upload, name="upload_files"),
    path("status/", views.status, name="status"),
    path("collections/", views.collections, name="collections"),
    path("collections/<int:collection_id>/", views.collection_edit, name="collection_edit"),
    path("documents/<int:document_id>/label/", views.document_label, name="document_label"),
    path(
        "documents/<int:document_id>/reingest/",
        views.document_reingest_view,
        name="document_reingest",
    ),
    path("documents/<int:document_id>/delete/", views.document_delete_view, name="document_delete"),
    path(
        "documents/<int:document_id>/versions/",
        versions_views.document_versions,
        name="document_versions",
    ),
    path("sources/", sources_views.sources, name="sources"),
    path("sources/<int:source_id>/", sources_views.source_detail, name="source_detail"),
    path("sources/<int:source_id>/sync/", sources_views.source_sync_now, name="source_sync"),
    path(
        "documents/<int:document_id>/download/",
        views.document_download,
        name="document_download",
    ),
]
