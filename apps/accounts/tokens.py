"""Personal API tokens: created (the secret shown once), checked on each use, revoked.

A token reads `enc_` and 43 URL-safe characters (32 random bytes). The database keeps
its SHA-256 and its first characters only. A token works while its owner is active, it
has not expired and nobody revoked it; every one of those is checked on each use, so a
deactivated account's tokens stop on the very next request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

TOKEN_PREFIX = "enc_"  # noqa: S105 - the visible start of every token, no secret
# What the settings page offers; a token never lives longer than a year.
EXPIRY_DAYS = (7, 30, 90, 365)
NAME_MAX_CHARS = 100


class TokenRefused(Exception):
    """The bearer token does not work; str() says why, for the client."""


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def token_create(*, user: AbstractBaseUser, name: str, days: int) -> CreatedToken:
    name = (name or "").replace("\x00", "").strip()
    if not name:
        raise ValueError("Give the token a name, e.g. the tool that will use it.")
    if len(name) > NAME_MAX_CHARS:
        raise ValueError(f"A token's name is at most {NAME_MAX_CHARS} characters.")
    if days not in EXPIRY_DAYS:
        raise ValueError(f"A token expires after one of {', '.join(map(str, EXPIRY_DAYS))} days.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,  # type: ignore[misc]  # AUTH_USER_MODEL is auth.User
            name=name,
            prefix=secret[:12],
            digest=token_digest(secret),
            expires_at=timezone.now() + timedelta(days=days),
        )
        audit_record(
            actor=user,
            action="api_token.created",
            target=token,
            details={"token_id": token.pk, "name": name, "expires_at": token.expires_at},
        )
    return CreatedToken(token, secret)


def token_revoke(*, token: ApiToken, actor: AbstractBaseUser | None, reason: str) -> None:
    """Revoke one token (idempotent: a revoked token stays as it was)."""
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            return
        locked.revoked_at = timezone.now()
        locked.revoked_reason = reason[:200]
        locked.save(update_fields=["revoked_at", "revoked_reason"])
        audit_record(
            actor=actor,
            action="api_token.revoked",
            target=locked,
            details={"token_id": locked.pk, "owner": locked.user_id, "reason": reason},
        )


def tokens_revoke_all(
    *, user: AbstractBaseUser, actor: AbstractBaseUser | None, reason: str
) -> int:
    """Revoke every live token of `user`; how many were revoked."""
    live = ApiToken.objects.filter(user_id=user.pk, revoked_at__isnull=True)
    count = 0
    for token in live:
        token_revoke(token=token, actor=actor, reason=reason)
        count += 1
    return count


def token_authenticate(header: str | None) -> ApiToken:
    """The live token of an `Authorization: Bearer …` header, with its user loaded; raises
    TokenRefused with the reason otherwise."""
    scheme, _, secret = (header or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise TokenRefused(
            "No API token was sent. Send 'Authorization: Bearer <token>'; create a token on "
            "your API tokens page in Enclave."
        )
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise TokenRefused("This is not an Enclave API token.")
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(secret)).first()
    if token is None:
        raise TokenRefused("This API token is not known to Enclave.")
    if token.revoked_at is not None:
        raise TokenRefused("This API token was revoked; create a new one.")
    if token.expires_at <= timezone.now():
        raise TokenRefused("This API token has expired; create a new one.")
    if not token.user.is_active:
        raise TokenRefused("The account this API token belongs to is deactivated.")
    return token


def token_used(token: ApiToken) -> None:
    """Note the use on the token (the settings page shows when it was last used)."""
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
