"""The versions page of a document: every version, who uploaded it, when, its SHA-256,
and a download link for each (admins only, through the audited download view)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from apps.core.http import AuthenticatedHttpRequest
from apps.knowledge.models import Document
from apps.knowledge.versions import versions_of
from apps.knowledge.views import admin_view


@admin_view
@require_GET
def document_versions(request: AuthenticatedHttpRequest, document_id: int) -> HttpResponse:
    document = get_object_or_404(Document, pk=document_id)
    versions = versions_of(document)
    return render(
        request,
        "knowledge/versions.html",
        {"document": versions[0] if versions else document, "versions": versions},
    )
