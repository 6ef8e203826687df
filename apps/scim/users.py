"""Users as the identity provider provisions them. Each change is audited in its own
transaction, naming the source `scim` and the SCIM token's id.

Deactivation ends the person's access at once: the account is inactive (every later
request and API token check refuses it), each of their sessions is deleted, and each of
their API tokens is revoked, with an audit event for each revocation and one for the
deactivation.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.tokens import tokens_revoke_all
from apps.audit.services import audit_record
from apps.scim.errors import ScimError, invalid
from apps.scim.models import ScimToken
from apps.scim.patch import boolean_value, email_value

_USERNAME = UnicodeUsernameValidator()


def sessions_end(user: User) -> int:
    """Delete every live session signed in as `user`; how many. Sessions are signed
    blobs in the database, so each live one is decoded once."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            session.delete()
            ended += 1
    return ended


def _scim(token: ScimToken, **details: Any) -> dict[str, Any]:
    return {"source": "scim", "scim_token_id": token.pk, **details}


def user_fields(data: Any) -> dict[str, Any]:
    """The fields of a User resource (POST, PUT): userName required."""
    if not isinstance(data, dict):
        raise invalid("A User resource is a JSON object.")
    username = data.get("userName")
    if not isinstance(username, str) or not username.strip():
        raise invalid("userName is required.")
    raw_name = data.get("name")
    name: dict[str, Any] = raw_name if isinstance(raw_name, dict) else {}
    fields: dict[str, Any] = {
        "username": username.strip(),
        "first_name": str(name.get("givenName") or ""),
        "last_name": str(name.get("familyName") or ""),
        "email": email_value(data.get("emails") or ""),
        "active": boolean_value(data.get("active", True)),
    }
    return fields


def _check_username(username: str, *, other_than: int | None = None) -> None:
    if len(username) > 150:
        raise invalid("userName is at most 150 characters.")
    try:
        _USERNAME(username)
    except ValidationError:
        raise invalid(
            "userName may hold letters, digits and @ . + - _ only (an email address works)."
        ) from None
    same = User.objects.filter(username__iexact=username)
    if other_than is not None:
        same = same.exclude(pk=other_than)
    if same.exists():
        raise ScimError(409, f"A user named {username!r} exists already.", scim_type="uniqueness")


def scim_user_create(*, data: Any, token: ScimToken) -> User:
    fields = user_fields(data)
    _check_username(fields["username"])
    with transaction.atomic():
        user = User(
            username=fields["username"],
            first_name=fields["first_name"][:150],
            last_name=fields["last_name"][:150],
            email=fields["email"][:254],
            is_active=fields["active"],
        )
        user.set_unusable_password()  # signs in through the identity provider (OIDC)
        user.save()
        audit_record(
            actor=None,
            action="scim.user_created",
            target=user,
            details=_scim(token, user_id=user.pk, username=user.username, active=user.is_active),
        )
    return user


def scim_user_update(*, user: User, changes: dict[str, Any], token: ScimToken) -> User:
    """Apply PATCH/PUT changes (active, username, first_name, last_name, email)."""
    if "username" in changes:
        _check_username(changes["username"], other_than=user.pk)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        fields = {k: v for k, v in changes.items() if k != "active" and getattr(user, k) != v}
        for name, value in fields.items():
            setattr(user, name, value)
        if fields:
            user.save(update_fields=list(fields))
            audit_record(
                actor=None,
                action="scim.user_updated",
                target=user,
                details=_scim(token, user_id=user.pk, fields=sorted(fields)),
            )
        active = changes.get("active")
        if active is False and user.is_active:
            _deactivate(user, token)
        elif active is True and not user.is_active:
            user.is_active = True
            user.save(update_fields=["is_active"])
            audit_record(
                actor=None,
                action="scim.user_reactivated",
                target=user,
                details=_scim(token, user_id=user.pk),
            )
    return user


def _deactivate(user: User, token: ScimToken) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])
    revoked = tokens_revoke_all(user=user, actor=None, reason="account deactivated (scim)")
    ended = sessions_end(user)
    audit_record(
        actor=None,
        action="scim.user_deactivated",
        target=user,
        details=_scim(token, user_id=user.pk, sessions_ended=ended, tokens_revoked=revoked),
    )


def scim_user_delete(*, user: User, token: ScimToken) -> None:
    """Deactivate (sessions, tokens: audited), then delete. The audit trail keeps the
    username it copied; the person's conversations go with the account."""
    with transaction.atomic():
        if user.is_active:
            _deactivate(user, token)
        else:
            sessions_end(user)
        audit_record(
            actor=None,
            action="scim.user_deleted",
            target=user,
            details=_scim(token, user_id=user.pk, username=user.username),
        )
        user.delete()
