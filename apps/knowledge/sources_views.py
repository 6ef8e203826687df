"""The Sources pages: the synced folders, a form for a new one, "Sync now", and each
sync's report (added, updated, removed, unchanged, failed with reasons)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.core.http import AuthenticatedHttpRequest
from apps.knowledge.models import Source
from apps.knowledge.sources import SourceForm, format_label_rules, source_create, sync_enqueue
from apps.knowledge.views import admin_view

RUNS_SHOWN = 20


@admin_view
def sources(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SourceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        source = source_create(data=form.cleaned_data, actor=request.user)
        messages.success(
            request, f"Source “{source.name}” created; sync it now or wait for its schedule."
        )
        return redirect("knowledge:source_detail", source_id=source.pk)
    listed = [
        (s, s.runs.first()) for s in Source.objects.select_related("collection").order_by("name")
    ]
    return render(
        request,
        "knowledge/sources.html",
        {"sources": listed, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@admin_view
@require_GET
def source_detail(request: AuthenticatedHttpRequest, source_id: int) -> HttpResponse:
    source = get_object_or_404(Source.objects.select_related("collection"), pk=source_id)
    return render(
        request,
        "knowledge/source_detail.html",
        {
            "source": source,
            "rules": format_label_rules(source.label_rules or []),
            "runs": source.runs.select_related("started_by")[:RUNS_SHOWN],
        },
    )


@admin_view
@require_POST
def source_sync_now(request: AuthenticatedHttpRequest, source_id: int) -> HttpResponse:
    source = get_object_or_404(Source, pk=source_id)
    if sync_enqueue(source=source, actor=request.user):
        messages.info(request, f"Sync of “{source.name}” queued; its report appears below.")
    else:
        messages.error(
            request, "The task queue is unavailable right now; nothing was started. Try again."
        )
    return redirect("knowledge:source_detail", source_id=source.pk)
