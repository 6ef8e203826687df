from django.urls import path

from apps.knowledge import views

app_name = "knowledge"

urlpatterns = [
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
        "documents/<int:document_id>/download/",
        views.document_download,
        name="document_download",
    ),
]
