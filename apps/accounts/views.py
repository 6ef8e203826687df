from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.accounts.roles import PERM_MANAGE_KNOWLEDGE, PERM_REVIEW_AUDIT, PERM_USE_ASSISTANT


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to the page it came for."""
    if request.user.has_perm(PERM_MANAGE_KNOWLEDGE):
        return redirect("knowledge:upload")
    if request.user.has_perm(PERM_REVIEW_AUDIT):
        return redirect("audit:events")
    if request.user.has_perm(PERM_USE_ASSISTANT):
        return redirect("assistant:chat")
    return render(request, "home.html")
