"""The employee's API tokens page: create (the token shown this once), list, revoke."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import ApiToken
from apps.accounts.tokens import EXPIRY_DAYS, NAME_MAX_CHARS, token_create, token_revoke
from apps.core.http import AuthenticatedHttpRequest
from apps.core.roles import PERM_USE_ASSISTANT

# A token asks questions as its owner: only someone who may ask has a use for one.
assistant_required = permission_required(PERM_USE_ASSISTANT, raise_exception=True)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_CHARS, help_text="The tool that will use it.")
    days = forms.TypedChoiceField(
        label="Expires after",
        choices=[(d, f"{d} days") for d in EXPIRY_DAYS],
        coerce=int,
        initial=90,
    )


@login_required
@assistant_required
@require_http_methods(["GET", "POST"])
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    created = None
    status = 200
    form = TokenForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            created = token_create(
                user=request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
            )
            form = TokenForm()
        else:
            status = 400
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "created": created,
            "tokens": ApiToken.objects.filter(user=request.user),
            "api_base": request.build_absolute_uri("/v1"),
            "now": timezone.now(),
        },
        status=status,
    )


@login_required
@assistant_required
@require_POST
def revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    # Another person's token is a 404, as if it did not exist.
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token_revoke(token=token, actor=request.user, reason="revoked by its owner")
    return redirect("api:tokens")
