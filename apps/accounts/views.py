from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.accounts.forms import SignInForm
from apps.core.roles import PERM_MANAGE_KNOWLEDGE, PERM_REVIEW_AUDIT, PERM_USE_ASSISTANT


class SignInView(auth_views.LoginView):
    """Django's login view (it rotates the session key), with the rate-limited form."""

    form_class = SignInForm

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = settings.OIDC_ENABLED
        context["oidc_button"] = settings.OIDC_BUTTON_LABEL
        return context


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
