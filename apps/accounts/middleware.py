"""End the session of an account that was deactivated (or deleted) since it signed in."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import SESSION_KEY, get_user_model
from django.http import HttpRequest, HttpResponse

from apps.audit.services import audit_record
from apps.audit.signals import client_ip


class ActiveUserMiddleware:
    """Right after AuthenticationMiddleware.

    Django's backends already refuse an inactive user, so ``request.user`` becomes
    anonymous; but the session itself would live on, and would sign the person back in the
    moment the account is re-activated. Here the session is flushed (a new, empty key) and
    the end is audited, on the first request after deactivation.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        # request.user first: on a stale password hash Django flushes the session itself.
        if session is not None and not request.user.is_authenticated and SESSION_KEY in session:
            self._end(request, session[SESSION_KEY])
        return self.get_response(request)

    @staticmethod
    def _end(request: HttpRequest, user_pk: str) -> None:
        request.session.flush()
        user = get_user_model()._default_manager.filter(pk=user_pk).first()
        audit_record(
            actor=user,
            action="auth.logout",
            details={
                "ip": client_ip(request),
                "reason": "account deleted" if user is None else "account deactivated",
            },
        )
