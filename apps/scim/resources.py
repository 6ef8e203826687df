"""Users and groups as SCIM resources (RFC 7643 §4), and list responses (RFC 7644 §3.4.2).

A SCIM User is a Django user (`id` its primary key, `userName` its username); a SCIM
Group is a Django group: the role groups too, so the identity provider can grant the
employee role, and the groups knowledge admins grant collections to.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.http import HttpRequest
from django.urls import reverse

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def user_resource(user: User, request: HttpRequest) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": str(user.pk),
        "userName": user.username,
        "name": {"givenName": user.first_name, "familyName": user.last_name},
        "displayName": user.get_full_name() or user.username,
        "active": user.is_active,
        "emails": [{"value": user.email, "primary": True, "type": "work"}] if user.email else [],
        "groups": [
            {"value": str(g.pk), "display": g.name} for g in user.groups.all().order_by("name")
        ],
        "meta": {
            "resourceType": "User",
            "created": user.date_joined.isoformat(),
            "location": request.build_absolute_uri(reverse("scim:user", args=[user.pk])),
        },
    }
    return resource


def group_resource(group: Group, request: HttpRequest, *, members: bool = True) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.pk),
        "displayName": group.name,
        "meta": {
            "resourceType": "Group",
            "location": request.build_absolute_uri(reverse("scim:group", args=[group.pk])),
        },
    }
    if members:
        resource["members"] = [
            {"value": str(pk), "display": name}
            for pk, name in group.user_set.order_by("pk").values_list("pk", "username")
        ]
    return resource


def list_response(resources: list[dict[str, Any]], *, total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
