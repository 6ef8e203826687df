"""Optional OpenID Connect sign-in (mozilla-django-oidc), on when OIDC_RP_CLIENT_ID is set.

The identity provider says who someone is and, in one claim (``OIDC_GROUPS_CLAIM``),
which of its groups they belong to. ``OIDC_GROUP_MAP`` turns those claim values into
Enclave's Django groups: the three roles and any collection-access group. At every
sign-in the user's *mapped* groups are set to exactly what the claim grants now (a group
removed at the provider is removed here); groups that no mapping names are left alone, so
an administrator can still grant those by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apps.accounts.claims import groups_from_claims, managed_groups
from apps.audit.services import audit_record


class EnclaveOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, with usernames and groups taken from the claims."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        # An e-mail the provider itself says is unverified must not match a local account.
        if claims.get("email_verified") is False:
            return False
        return bool(claims.get("email")) and bool(super().verify_claims(claims))

    def get_username(self, claims: dict[str, Any]) -> str:
        name = claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or ""
        return str(name)[:150] or str(super().get_username(claims))

    def create_user(self, claims: dict[str, Any]) -> Any:
        with transaction.atomic():
            user = super().create_user(claims)
            self._sync(user, claims)
        return user

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        with transaction.atomic():
            self._sync(user, claims)
        return user

    @staticmethod
    def _sync(user: Any, claims: Mapping[str, Any]) -> None:
        group_map = settings.OIDC_GROUP_MAP
        user_groups_set(
            user=user,
            granted=groups_from_claims(
                claims, claim=settings.OIDC_GROUPS_CLAIM, group_map=group_map
            ),
            managed=managed_groups(group_map),
        )


def user_groups_set(*, user: Any, granted: set[str], managed: set[str]) -> None:
    """Make the user's groups among ``managed`` exactly ``granted``; others untouched."""
    current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
    if current == granted:
        return
    add = [Group.objects.get_or_create(name=name)[0] for name in sorted(granted - current)]
    remove = list(Group.objects.filter(name__in=current - granted))
    user.groups.add(*add)
    user.groups.remove(*remove)
    audit_record(
        actor=user,
        action="auth.groups_synced",
        target=user,
        details={
            "source": "oidc",
            "added": sorted(granted - current),
            "removed": sorted(current - granted),
        },
    )
