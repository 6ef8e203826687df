"""The compliance console. Every view requires PERM_REVIEW_AUDIT: anonymous visitors are
sent to sign in, everyone else signed in without it gets 403."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from apps.audit.seal_verify import seal_status, verify_sealed
from apps.compliance import exports, selectors
from apps.compliance.forms import EventFilterForm
from apps.compliance.provenance import PROVENANCE_LIMIT, conversation_provenance
from apps.compliance.register import model_register
from apps.compliance.selectors import EventFilter
from apps.compliance.services import audit_export_begin
from apps.core.http import AuthenticatedHttpRequest, id_param
from apps.core.roles import PERM_REVIEW_AUDIT

View = Callable[..., HttpResponseBase]


def compliance_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.has_perm(PERM_REVIEW_AUDIT):
            raise PermissionDenied("The audit trail is for compliance officers.")
        return view(request, *args, **kwargs)

    return wrapped


def _filters_from(request: HttpRequest) -> tuple[EventFilterForm, EventFilter | None]:
    if not any(k not in ("before", "after") for k in request.GET):
        return EventFilterForm(), EventFilter()
    form = EventFilterForm(request.GET)
    if not form.is_valid():
        return form, None
    return form, form.to_filter()


def _query(request: HttpRequest, **extra: Any) -> str:
    """The current filters as a query string, without paging cursors, plus `extra`."""
    params = [(k, v) for k, v in request.GET.items() if k not in ("before", "after") and v]
    params += [(k, v) for k, v in extra.items() if v is not None]
    return urlencode(params)


def _cursor(request: HttpRequest, name: str) -> int | None:
    return id_param(request.GET.get(name, ""))


@require_GET
@compliance_required
def events(request: HttpRequest) -> HttpResponse:
    form, filters = _filters_from(request)
    if filters is None:
        return render(request, "audit/events.html", {"form": form, "page": None}, status=400)
    page = selectors.event_page(
        filters=filters, before=_cursor(request, "before"), after=_cursor(request, "after")
    )
    return render(
        request,
        "audit/events.html",
        {
            "form": form,
            "page": page,
            "query": _query(request),
            "older_query": _query(request, before=page.older) if page.older else "",
            "newer_query": _query(request, after=page.newer) if page.newer else "",
            "filtered": not filters.is_empty(),
        },
    )


@require_GET
@compliance_required
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = selectors.event_get(event_id=event_id)
    if event is None:
        raise Http404("No such event.")
    return render(
        request,
        "audit/event_detail.html",
        {
            "event": event,
            "details_pretty": json.dumps(event.details, indent=2, sort_keys=True),
            "previous_id": event.id - 1 if event.id > 1 else None,
            "next_id": event.id + 1 if selectors.event_get(event_id=event.id + 1) else None,
        },
    )


@require_GET
@compliance_required
def provenance(request: HttpRequest, conversation_id: str) -> HttpResponse:
    turns = conversation_provenance(conversation_id=conversation_id)
    if not turns:
        raise Http404("No events for this conversation.")
    return render(
        request,
        "audit/provenance.html",
        {
            "conversation_id": conversation_id,
            "turns": turns,
            "left_premises": any(t.left_premises for t in turns),
            "limit": PROVENANCE_LIMIT,
            "truncated": sum(len(t.events) for t in turns) >= PROVENANCE_LIMIT,
        },
    )


@require_GET
@compliance_required
def event_provenance(request: HttpRequest, event_id: int) -> HttpResponse:
    """From any event of a conversation to that conversation's provenance page."""
    event = selectors.event_get(event_id=event_id)
    if event is None or not event.conversation_id:
        raise Http404("This event belongs to no conversation.")
    url = reverse("audit:provenance", kwargs={"conversation_id": event.conversation_id})
    return redirect(f"{url}#event-{event.id}")


def _export(request: AuthenticatedHttpRequest, fmt: str) -> HttpResponseBase:
    form, filters = _filters_from(request)
    if filters is None:
        return render(request, "audit/events.html", {"form": form, "page": None}, status=400)
    upto = audit_export_begin(actor=request.user, fmt=fmt, filters=filters.as_details())
    rows = selectors.events_for_export(filters=filters, upto_id=upto)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        response = StreamingHttpResponse(exports.csv_stream(rows), content_type="text/csv")
    else:
        header = {
            "exported_at": timezone.now().isoformat(),
            "exported_by": request.user.get_username(),
            "filter": filters.as_details(),
            "upto_id": upto,
        }
        response = StreamingHttpResponse(
            exports.json_stream(rows, header=header), content_type="application/json"
        )
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@compliance_required
def export_csv(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    return _export(request, "csv")


@require_GET
@compliance_required
def export_json(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    return _export(request, "json")


@require_http_methods(["GET", "POST"])
@compliance_required
def verify(request: HttpRequest) -> HttpResponse:
    # POST only runs it: a walk over millions of rows is not for link prefetchers.
    report = verify_sealed() if request.method == "POST" else None
    return render(request, "audit/verify.html", {"report": report, "seal": seal_status()})


@require_GET
@compliance_required
def models_register(request: HttpRequest) -> HttpResponse:
    register = model_register()
    return render(request, "audit/models.html", {"cards": register.cards, "register": register})
