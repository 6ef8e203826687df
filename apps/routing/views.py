"""The egress policy page, for knowledge admins."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import redirect, render

from apps.core.http import AuthenticatedHttpRequest
from apps.core.roles import PERM_MANAGE_KNOWLEDGE
from apps.routing import services
from apps.routing.forms import PolicyForm, ProviderAccessForm
from apps.routing.gate import current_policy
from apps.routing.models import ProviderAccess, ProviderUsage
from apps.routing.providers import external_provider


@login_required
@permission_required(PERM_MANAGE_KNOWLEDGE, raise_exception=True)
def policy(request: AuthenticatedHttpRequest) -> HttpResponse:
    provider = external_provider()
    current = current_policy()
    access = ProviderAccess.objects.filter(provider=provider.name).first() if provider else None
    policy_form = PolicyForm(
        request.POST if request.POST.get("form") == "policy" else None,
        initial={
            "escalation_enabled": current.escalation_enabled,
            "non_sensitive_labels": current.non_sensitive_labels,
            "pii_mode": current.pii_mode,
            "auto_escalate": current.auto_escalate,
        },
    )
    access_form = ProviderAccessForm(
        request.POST if request.POST.get("form") == "access" else None,
        initial={
            "groups": list(access.groups.all()) if access else [],
            "daily_token_budget": access.daily_token_budget if access else 200_000,
            "daily_cost_budget": access.daily_cost_budget if access else 10,
        },
    )
    if request.method == "POST":
        if request.POST.get("form") == "policy" and policy_form.is_valid():
            services.policy_update(actor=request.user, **policy_form.cleaned_data)
            messages.success(request, "Egress policy saved.")
            return redirect("routing:policy")
        if request.POST.get("form") == "access" and provider and access_form.is_valid():
            data = access_form.cleaned_data
            services.provider_access_set(
                actor=request.user,
                provider=provider.name,
                groups=list(data["groups"]),
                daily_token_budget=data["daily_token_budget"],
                daily_cost_budget=data["daily_cost_budget"],
            )
            messages.success(request, f"Access to {provider.name} saved.")
            return redirect("routing:policy")
    usage = (
        ProviderUsage.objects.filter(provider=provider.name).order_by("-day").first()
        if provider
        else None
    )
    return render(
        request,
        "routing/policy.html",
        {
            "provider": provider,
            "policy_form": policy_form,
            "access_form": access_form,
            "usage": usage,
            "policy": current,
        },
    )
