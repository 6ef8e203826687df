"""Who is calling: the personal API token of the Authorization header, checked on each
request, and the use audited by the token's id (never the token)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest

from apps.accounts import ratelimit
from apps.accounts.tokens import TokenRefused, token_authenticate, token_used
from apps.api.errors import ApiError
from apps.audit.services import audit_record
from apps.audit.signals import client_ip
from apps.core.roles import PERM_USE_ASSISTANT


def api_user(request: HttpRequest, *, endpoint: str) -> tuple[User, int]:
    """The token's user and the token id; ApiError 401 for a token that does not work,
    403 for an account without the assistant role. Each use is audited."""
    try:
        token = token_authenticate(request.headers.get("Authorization"))
    except TokenRefused as err:
        audit_record(
            actor=None,
            action="api.token_refused",
            details={"endpoint": endpoint, "reason": str(err), "ip": client_ip(request)},
        )
        raise ApiError(401, str(err), code="invalid_api_key") from None
    user = token.user
    audit_record(
        actor=user,
        action="api.request",
        details={"token_id": token.pk, "endpoint": endpoint, "ip": client_ip(request)},
    )
    token_used(token)
    if not user.has_perm(PERM_USE_ASSISTANT):
        raise ApiError(
            403,
            "This account may not use the assistant (it has no Employees role).",
            code="permission_denied",
        )
    return user, token.pk


def over_question_rate(user: User, limit: int) -> ApiError | None:
    """The browser's per-user question limit, on the same counter: a question asked in
    the browser and one asked through the API count alike."""
    window = ratelimit.question_hit(user.pk)
    if window.count <= limit:
        return None
    wait = ratelimit.minutes_and_seconds(window.retry_after)
    return ApiError(
        429,
        f"You have asked {limit} questions in the last minute, the most allowed. Please wait "
        f"{wait} before asking again; your question was not sent.",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(max(1, window.retry_after))},
    )
