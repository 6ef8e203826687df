"""The console's erasure page: look a person up, see what goes, type the name to confirm.

Three steps on one URL, each a POST after the first GET, so nothing is erased by a link
or a prefetch: the name, then the preview with a confirmation field, then the erasure.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.compliance.erasure import ErasureError, person_erase, person_get, person_preview
from apps.compliance.views import compliance_required
from apps.core.http import AuthenticatedHttpRequest

_TEMPLATE = "audit/erase.html"


@require_http_methods(["GET", "POST"])
@compliance_required
def erase(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, _TEMPLATE, {"step": "find"})
    username = request.POST.get("username", "").strip()
    try:
        user = person_get(username=username)
        preview = person_preview(user=user)
        if request.POST.get("step") != "erase":
            return render(
                request, _TEMPLATE, {"step": "confirm", "username": username, "preview": preview}
            )
        if request.POST.get("confirm", "") != username:
            context = {
                "step": "confirm",
                "username": username,
                "preview": preview,
                "error": "The name typed does not match the account's; nothing was erased.",
            }
            return render(request, _TEMPLATE, context, status=400)
        done = person_erase(user=user, actor=request.user)
    except ErasureError as exc:
        return render(
            request,
            _TEMPLATE,
            {"step": "find", "username": username, "error": str(exc)},
            status=400,
        )
    return render(request, _TEMPLATE, {"step": "done", "done": done})
