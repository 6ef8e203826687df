"""The knowledge admin's embedder versions page: states, training, point counts, and the
re-index / activate / drop buttons (apps/retrieval/versions.py does the work)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.core.http import AuthenticatedHttpRequest
from apps.knowledge.views import admin_view
from apps.retrieval import versions
from apps.retrieval.index_state import index_summary
from apps.retrieval.models import EmbedderVersion
from apps.retrieval.store.protocol import StoreError


@admin_view
@require_GET
def embedders(request: AuthenticatedHttpRequest) -> HttpResponse:
    versions.active_version()  # a database without versions gets the packaged one back
    rows = []
    for v in EmbedderVersion.objects.select_related("base", "created_by"):
        try:
            points: int | str = versions.point_count(v)
        except StoreError as err:
            points = f"unknown ({err})"
        rows.append({"version": v, "points": points})
    context = {"rows": rows, "index": index_summary()}
    return render(request, "knowledge/embedders.html", context)


def _reindex(v: EmbedderVersion, user: User) -> str:
    versions.start_reindex(v, user)
    return f"Re-index of {v.name} started; the active version answers until you switch."


def _activate(v: EmbedderVersion, user: User) -> str:
    versions.activate(v, user)
    return f"{v.name} answers every query now; the previous version is retired."


def _drop(v: EmbedderVersion, user: User) -> str:
    versions.drop(v, user)
    return f"Dropped {v.name} and its points."


ACTIONS: dict[str, Callable[[EmbedderVersion, User], str]] = {
    "reindex": _reindex,
    "activate": _activate,
    "drop": _drop,
}


@admin_view
@require_POST
def embedder_action(
    request: AuthenticatedHttpRequest, version_id: int, action: str
) -> HttpResponse:
    """One of ACTIONS on one version; a refusal is shown on the page, nothing changes."""
    version = get_object_or_404(EmbedderVersion, pk=version_id)
    try:
        messages.success(request, ACTIONS[action](version, request.user))
    except (versions.VersionError, StoreError) as err:
        messages.error(request, str(err))
    return redirect("knowledge:embedders")
