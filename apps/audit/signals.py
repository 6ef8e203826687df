"""Sign-in, sign-out and failed sign-in, recorded from Django's auth signals."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from apps.audit.services import audit_record


def client_ip(request: HttpRequest | None) -> str:
    """The address the request came from.

    REMOTE_ADDR by default: X-Forwarded-For can be written by anyone, so a header is only
    believed when AUDIT_CLIENT_IP_HEADER names one the deployment's proxy sets (e.g.
    "HTTP_X_REAL_IP").
    """
    if request is None:
        return ""
    header = settings.AUDIT_CLIENT_IP_HEADER
    value = request.META.get(header, "") if header else ""
    if not value:
        value = request.META.get("REMOTE_ADDR", "")
    # A proxy chain lists the client first.
    return str(value).split(",")[0].strip()[:64]


def _on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(actor=user, action="auth.login", details={"ip": client_ip(request)})


def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(actor=user, action="auth.logout", details={"ip": client_ip(request)})


def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in `credentials`; only the name is kept.
    field = get_user_model().USERNAME_FIELD
    attempted = credentials.get(field, credentials.get("username", ""))
    audit_record(
        actor=None,
        action="auth.login_failed",
        # The account that was tried, so the list shows it without opening the details.
        target=str(attempted or "")[:150] or None,
        details={"username": str(attempted or "")[:150], "ip": client_ip(request)},
    )


def connect() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="audit.auth.login")
    user_logged_out.connect(_on_logout, dispatch_uid="audit.auth.logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="audit.auth.login_failed")
