"""Groups as the identity provider provisions them. A membership change changes what
the member reads on their very next question (access is read from the groups at each
search), and is audited like a collection's access change: which group, who was added
and removed, the collections the group is granted, and the source `scim`.

The three role groups can gain and lose members (that is how the identity provider
grants a role) but cannot be renamed or deleted here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction

from apps.audit.services import audit_record
from apps.core.roles import ROLE_PERMISSIONS
from apps.knowledge.models import Collection
from apps.scim.errors import ScimError, invalid
from apps.scim.models import ScimToken
from apps.scim.patch import MemberChanges, member_id_set


def _scim(token: ScimToken, **details: Any) -> dict[str, Any]:
    return {"source": "scim", "scim_token_id": token.pk, **details}


def _check_name(name: str, *, other_than: int | None = None) -> None:
    if not name or len(name) > 150:
        raise invalid("displayName is required, at most 150 characters.")
    same = Group.objects.filter(name__iexact=name)
    if other_than is not None:
        same = same.exclude(pk=other_than)
    if same.exists():
        raise ScimError(409, f"A group named {name!r} exists already.", scim_type="uniqueness")


def _users(ids: Iterable[int]) -> list[User]:
    wanted = set(ids)
    found = list(User.objects.filter(pk__in=wanted))
    missing = wanted - {u.pk for u in found}
    if missing:
        shown = ", ".join(str(i) for i in sorted(missing)[:5])
        raise invalid(f"No user with id {shown}: create the user first.")
    return found


def _membership_changed(
    group: Group, added: list[User], removed: list[User], token: ScimToken
) -> None:
    if not added and not removed:
        return
    audit_record(
        actor=None,
        action="group.membership_changed",
        target=group,
        details=_scim(
            token,
            group_id=group.pk,
            group=group.name,
            added=sorted(u.username for u in added),
            removed=sorted(u.username for u in removed),
            collections=sorted(
                Collection.objects.filter(groups=group).values_list("pk", flat=True)
            ),
        ),
    )


def member_ids(data: dict[str, Any]) -> set[int] | None:
    """The members of a Group resource (POST, PUT); None when it names none."""
    return None if data.get("members") is None else member_id_set(data["members"])


def scim_group_create(*, data: Any, token: ScimToken) -> Group:
    if not isinstance(data, dict):
        raise invalid("A Group resource is a JSON object.")
    name = str(data.get("displayName") or "").strip()
    _check_name(name)
    members = _users(member_ids(data) or set())
    with transaction.atomic():
        group = Group.objects.create(name=name)
        audit_record(
            actor=None,
            action="scim.group_created",
            target=group,
            details=_scim(token, group_id=group.pk, group=name),
        )
        group.user_set.add(*members)
        _membership_changed(group, members, [], token)
    return group


def scim_group_update(*, group: Group, changes: MemberChanges, token: ScimToken) -> Group:
    """A PATCH or PUT: rename, add, remove or replace members."""
    if changes.display_name is not None and changes.display_name != group.name:
        if group.name in ROLE_PERMISSIONS:
            raise invalid(f"The role group {group.name!r} cannot be renamed.", "mutability")
        _check_name(changes.display_name, other_than=group.pk)
    with transaction.atomic():
        group = Group.objects.select_for_update().get(pk=group.pk)
        members = group.user_set
        if changes.replace is not None:
            current = set(members.values_list("pk", flat=True))
            added = _users(changes.replace - current)
            removed = list(User.objects.filter(pk__in=current - changes.replace))
        else:
            # Only the named users are read: a group of thousands is not loaded per change.
            named = members.filter(pk__in=changes.add | changes.remove)
            already = set(named.values_list("pk", flat=True))
            added = _users(changes.add - changes.remove - already)
            removed = list(User.objects.filter(pk__in=changes.remove & already))
        if changes.display_name is not None and changes.display_name != group.name:
            old, group.name = group.name, changes.display_name
            group.save(update_fields=["name"])
            audit_record(
                actor=None,
                action="scim.group_renamed",
                target=group,
                details=_scim(token, group_id=group.pk, old=old, new=group.name),
            )
        group.user_set.add(*added)
        group.user_set.remove(*removed)
        _membership_changed(group, added, removed, token)
    return group


def scim_group_delete(*, group: Group, token: ScimToken) -> None:
    if group.name in ROLE_PERMISSIONS:
        raise invalid(f"The role group {group.name!r} cannot be deleted.", "mutability")
    with transaction.atomic():
        members = list(group.user_set.all())
        _membership_changed(group, [], members, token)
        audit_record(
            actor=None,
            action="scim.group_deleted",
            target=group,
            details=_scim(token, group_id=group.pk, group=group.name),
        )
        group.delete()
