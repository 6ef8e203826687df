"""The identity provider's bearer token: created once (the secret printed once), checked
on every SCIM request, revoked by `manage.py scim_token revoke`."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.services import audit_record
from apps.scim.errors import ScimError
from apps.scim.models import ScimToken

TOKEN_PREFIX = "scim_"  # noqa: S105 - the visible start of every SCIM token, no secret


@dataclass(frozen=True)
class CreatedScimToken:
    token: ScimToken
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def scim_token_create(*, name: str) -> CreatedScimToken:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("A SCIM token needs a name of 1 to 100 characters (e.g. the IdP's).")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ScimToken.objects.create(name=name, prefix=secret[:13], digest=_digest(secret))
        audit_record(
            actor=None,
            action="scim.token_created",
            target=token,
            details={"source": "scim", "scim_token_id": token.pk, "name": name},
        )
    return CreatedScimToken(token, secret)


def scim_token_revoke(*, token: ScimToken) -> None:
    with transaction.atomic():
        ScimToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(
            actor=None,
            action="scim.token_revoked",
            target=token,
            details={"source": "scim", "scim_token_id": token.pk},
        )


def scim_caller(request: HttpRequest) -> ScimToken:
    """The live SCIM token of the request; ScimError 401 otherwise."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise ScimError(401, "Send the SCIM token as 'Authorization: Bearer scim_…'.")
    token = ScimToken.objects.filter(digest=_digest(secret), revoked_at__isnull=True).first()
    if token is None:
        raise ScimError(401, "This SCIM token is not known to Enclave, or was revoked.")
    ScimToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
