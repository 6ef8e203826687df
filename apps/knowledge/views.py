"""The knowledge admin's pages: upload with live status, collections, labels."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.files.uploadedfile import UploadedFile
from django.db import InterfaceError, OperationalError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.audit.services import audit_record
from apps.core.http import AuthenticatedHttpRequest, id_param
from apps.core.labels import Label
from apps.core.roles import PERM_MANAGE_KNOWLEDGE
from apps.knowledge import selectors, services
from apps.knowledge.forms import CollectionForm, LabelForm
from apps.knowledge.models import Collection, Document
from apps.knowledge.uploads import RefusedFile, received_files
from apps.retrieval.store.protocol import StoreError

logger = logging.getLogger(__name__)

admin_required = permission_required(PERM_MANAGE_KNOWLEDGE, raise_exception=True)
_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


def admin_view(view: _View) -> _View:
    """A knowledge admin's page: anonymous users are sent to sign in, others without the
    role get 403."""
    return login_required(admin_required(view))


def _selected_collection(request: HttpRequest) -> Collection | None:
    raw = request.GET.get("collection") or request.POST.get("collection")
    if raw:
        pk = id_param(raw)
        if pk is None:
            raise Http404("No such collection.")
        return get_object_or_404(Collection, pk=pk)
    return Collection.objects.order_by("name").first()


@admin_view
@require_GET
def upload_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    collection = _selected_collection(request)
    documents = selectors.documents_in(collection) if collection else []
    return render(
        request,
        "knowledge/upload.html",
        {
            "collections": selectors.collections_for_admin(),
            "collection": collection,
            "documents": documents,
            "labels": Label.choices,
            "max_bytes": settings.UPLOAD_MAX_BYTES,
        },
    )


def _not_stored(upload_file: UploadedFile) -> str:
    return (
        f"{upload_file.name} was not stored: the database is not answering right now. "
        "Nothing was kept; upload it again in a moment."
    )


@admin_view
@require_POST
def upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Many files at once; one result per file, so one bad file never hides the others."""
    collection = _selected_collection(request)
    if collection is None:
        return JsonResponse({"error": "Create a collection first."}, status=400)
    label = request.POST.get("label") or None
    results: list[dict[str, object]] = []
    database_down = False
    for upload_file in received_files(request, "files"):
        if isinstance(upload_file, RefusedFile):
            results.append({"name": upload_file.name, "ok": False, "message": upload_file.message})
            continue
        if database_down:
            results.append(
                {"name": upload_file.name, "ok": False, "message": _not_stored(upload_file)}
            )
            continue
        try:
            doc, enqueue = services.document_create(
                collection=collection, upload=upload_file, user=request.user, label=label
            )
        except services.UploadRejected as err:
            results.append({"name": upload_file.name, "ok": False, "message": str(err)})
            continue
        except (OperationalError, InterfaceError):
            # The connection is gone (database restarted, failover, ...); the transaction
            # rolled back and the service removed the stored file. Say so, not a 500.
            logger.exception("database unavailable during upload of %s", upload_file.name)
            database_down = True
            results.append(
                {"name": upload_file.name, "ok": False, "message": _not_stored(upload_file)}
            )
            continue
        row = selectors.document_status_row(doc)
        results.append({"name": upload_file.name, "ok": True, "message": enqueue.message, **row})
    if not results:
        return JsonResponse({"error": "No files were received."}, status=400)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if wants_json:
        return JsonResponse({"results": results}, status=503 if database_down else 200)
    for r in results:
        (messages.success if r["ok"] else messages.error)(
            request, f"{r['name']}: {'queued' if r['ok'] else r['message']}"
        )
    return redirect(f"{request.path.rsplit('/upload/', 1)[0]}/?collection={collection.pk}")


@admin_view
@require_GET
def status(request: AuthenticatedHttpRequest) -> JsonResponse:
    """Polled by the upload page until every row is indexed or failed."""
    collection = _selected_collection(request)
    if collection is None:
        return JsonResponse({"documents": []})
    rows = [selectors.document_status_row(d) for d in selectors.documents_in(collection)]
    return JsonResponse({"documents": rows})


@admin_view
def collections(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        collection = services.collection_create(
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            default_label=form.cleaned_data["default_label"],
            groups=form.cleaned_data["groups"],
            actor=request.user,
        )
        return _to_collections(request, f"Collection “{collection.name}” created.")
    return _form_page(
        request,
        "knowledge/collections.html",
        {"collections": selectors.collections_for_admin(), "form": form},
    )


@admin_view
def collection_edit(request: AuthenticatedHttpRequest, collection_id: int) -> HttpResponse:
    collection = get_object_or_404(Collection, pk=collection_id)
    form = CollectionForm(request.POST or None, instance=collection)
    if request.method == "POST" and form.is_valid():
        # Access goes through the service (audit + point payloads), not ModelForm.save().
        collection.description = form.cleaned_data["description"]
        collection.name = form.cleaned_data["name"]
        collection.save(update_fields=["name", "description"])
        services.collection_set_access(
            collection=collection,
            groups=form.cleaned_data["groups"],
            default_label=form.cleaned_data["default_label"],
            actor=request.user,
        )
        return _to_collections(request, f"Access to “{collection.name}” updated.")
    return _form_page(
        request, "knowledge/collection_edit.html", {"collection": collection, "form": form}
    )


def _to_collections(request: HttpRequest, done: str) -> HttpResponse:
    messages.success(request, done)
    return redirect("knowledge:collections")


def _form_page(request: HttpRequest, template: str, context: dict[str, object]) -> HttpResponse:
    """A form page; after a POST that did not validate, with status 400."""
    return render(request, template, context, status=400 if request.method == "POST" else 200)


def _back_to(doc: Document) -> HttpResponse:
    return redirect(f"/knowledge/?collection={doc.collection_id}")


@admin_view
@require_POST
def document_label(request: AuthenticatedHttpRequest, document_id: int) -> HttpResponse:
    doc = get_object_or_404(Document, pk=document_id)
    form = LabelForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the labels.")
        return _back_to(doc)
    services.document_set_label(document=doc, label=form.cleaned_data["label"], actor=request.user)
    messages.success(request, f"“{doc.title}” is now {form.cleaned_data['label']}.")
    return _back_to(doc)


@admin_view
@require_POST
def document_reingest_view(request: AuthenticatedHttpRequest, document_id: int) -> HttpResponse:
    doc = get_object_or_404(Document, pk=document_id)
    result = services.document_reingest(document=doc, actor=request.user)
    messages.info(request, result.message or f"“{doc.title}” queued for ingestion again.")
    return _back_to(doc)


@admin_view
@require_POST
def document_delete_view(request: AuthenticatedHttpRequest, document_id: int) -> HttpResponse:
    doc = get_object_or_404(Document, pk=document_id)
    try:
        services.document_delete(document=doc, actor=request.user)
    except StoreError as err:
        messages.error(request, f"“{doc.title}” was not deleted: {err}")
        return _back_to(doc)
    messages.success(request, f"“{doc.title}” deleted, with all its indexed passages.")
    return redirect(f"/knowledge/?collection={doc.collection_id}")


@login_required
@require_GET
def document_download(request: AuthenticatedHttpRequest, document_id: int) -> HttpResponseBase:
    """The uploaded original, only through this view: MEDIA_ROOT has no URL of its own."""
    doc = selectors.document_for_download(request.user, document_id)
    try:
        handle = doc.file.open("rb")
    except (FileNotFoundError, ValueError) as err:
        raise Http404("The original file of this document is missing.") from err
    audit_record(
        actor=request.user,
        action="document.downloaded",
        target=doc,
        details={
            "document_id": doc.pk,
            "collection_id": doc.collection_id,
            "label": doc.label,
            "version": doc.version,
        },
    )
    # Always a download, never rendered: an uploaded HTML file must not run on our origin.
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=doc.original_name or f"document-{doc.pk}",
        content_type="application/octet-stream",
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
