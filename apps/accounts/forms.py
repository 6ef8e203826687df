"""The sign-in form, with failed attempts limited per username and client address."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from apps.accounts import ratelimit
from apps.audit.services import audit_record
from apps.audit.signals import client_ip


class SignInForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": (
            "Too many failed sign-ins for this account from your address. "
            "Sign-in is paused for %(wait)s; try again then, or ask an administrator."
        ),
    }

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        ip = client_ip(self.request)
        limit = settings.LOGIN_FAILURE_LIMIT
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        failures = ratelimit.login_failures(username, ip)
        if username and failures.count >= limit:
            # The password is not even checked: a locked pair cannot be brute-forced.
            audit_record(
                actor=None,
                action="auth.login_locked",
                target=username[:150],
                details={
                    "username": username[:150],
                    "ip": ip,
                    "failures": failures.count,
                    "retry_after_seconds": failures.retry_after,
                },
            )
            raise ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"wait": ratelimit.minutes_and_seconds(failures.retry_after)},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            # auth.login_failed is audited by the user_login_failed signal (apps.audit).
            if username:
                ratelimit.login_failure_record(username, ip, window=window)
            raise
        ratelimit.login_failures_clear(username, ip)
        return cleaned
