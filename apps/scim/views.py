"""`/scim/v2/`: Users and Groups for an identity provider (RFC 7644), behind the SCIM
bearer token. Thin: parse, call apps/scim/users.py or groups.py, answer a resource."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse

# Bearer-token endpoints: no cookie session is read here, and a browser never sends an
# Authorization header by itself, so there is no cross-site request to forge.
from django.views.decorators.csrf import csrf_exempt  # nosemgrep: no-csrf-exempt

from apps.core.http import id_param
from apps.scim import groups, users
from apps.scim.auth import scim_caller
from apps.scim.errors import CONTENT_TYPE, ScimError, invalid, not_found
from apps.scim.filters import parse_eq_filter
from apps.scim.models import ScimToken
from apps.scim.patch import MemberChanges, group_changes, user_changes
from apps.scim.resources import group_resource, list_response, user_resource

MAX_PAGE = 500
Handler = Callable[..., HttpResponse]


def _scim_view(methods: tuple[str, ...]) -> Callable[[Handler], Handler]:
    def wrap(view: Handler) -> Handler:
        def inner(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ScimError(405, f"Use {' or '.join(methods)} here.")
                token = scim_caller(request)
                return view(request, token, **kwargs)
            except ScimError as err:
                return err.response()

        inner.__name__ = view.__name__
        return csrf_exempt(inner)  # nosemgrep: no-csrf-exempt - see the import

    return wrap


def _answer(body: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, content_type=CONTENT_TYPE)


def _body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise invalid("The request body is not JSON.", "invalidSyntax") from None


def _page(request: HttpRequest) -> tuple[int, int]:
    start = id_param(request.GET.get("startIndex") or "1") or 1
    count = id_param(request.GET.get("count") or "100")
    return start, min(MAX_PAGE, 100 if count is None else count)


def _listing(
    request: HttpRequest,
    rows: QuerySet[Any],
    render: Callable[[Any], dict],
    *,
    filterable: dict[str, str],
) -> JsonResponse:
    """A ListResponse page of `rows`, narrowed by the request's `filter` when it names one
    of `filterable` (SCIM attribute → lookup)."""
    if request.GET.get("filter"):
        lookup, value = parse_eq_filter(request.GET["filter"], attributes=filterable)
        rows = rows.filter(**{lookup: value})
    start, count = _page(request)
    total = rows.count()
    page = list(rows.order_by("pk")[start - 1 : start - 1 + count]) if count else []
    return _answer(list_response([render(r) for r in page], total=total, start=start))


def _one(rows: QuerySet[Any], kind: str, ident: str) -> Any:
    pk = id_param(ident)
    found = rows.filter(pk=pk).first() if pk is not None else None
    if found is None:
        raise not_found(kind, ident)
    return found


@_scim_view(("GET", "POST"))
def users_view(request: HttpRequest, token: ScimToken) -> HttpResponse:
    if request.method == "POST":
        user = users.scim_user_create(data=_body(request), token=token)
        return _answer(user_resource(user, request), 201)
    return _listing(
        request,
        User.objects.prefetch_related("groups"),
        lambda u: user_resource(u, request),
        filterable={"userName": "username__iexact"},
    )


@_scim_view(("GET", "PUT", "PATCH", "DELETE"))
def user_view(request: HttpRequest, token: ScimToken, user_id: str) -> HttpResponse:
    user = _one(User.objects.all(), "user", user_id)
    if request.method == "DELETE":
        users.scim_user_delete(user=user, token=token)
        return HttpResponse(status=204)
    if request.method == "PUT":
        fields = users.user_fields(_body(request))
        user = users.scim_user_update(user=user, changes=fields, token=token)
    elif request.method == "PATCH":
        user = users.scim_user_update(user=user, changes=user_changes(_body(request)), token=token)
    return _answer(user_resource(user, request))


@_scim_view(("GET", "POST"))
def groups_view(request: HttpRequest, token: ScimToken) -> HttpResponse:
    if request.method == "POST":
        group = groups.scim_group_create(data=_body(request), token=token)
        return _answer(group_resource(group, request), 201)
    members = "members" not in request.GET.get("excludedAttributes", "")
    return _listing(
        request,
        Group.objects.all(),
        lambda g: group_resource(g, request, members=members),
        filterable={"displayName": "name__iexact"},
    )


@_scim_view(("GET", "PUT", "PATCH", "DELETE"))
def group_view(request: HttpRequest, token: ScimToken, group_id: str) -> HttpResponse:
    group = _one(Group.objects.all(), "group", group_id)
    if request.method == "DELETE":
        groups.scim_group_delete(group=group, token=token)
        return HttpResponse(status=204)
    if request.method == "PUT":
        data = _body(request)
        if not isinstance(data, dict):
            raise invalid("A Group resource is a JSON object.")
        changes = MemberChanges(
            replace=groups.member_ids(data) or set(),
            display_name=str(data.get("displayName") or group.name).strip(),
        )
        group = groups.scim_group_update(group=group, changes=changes, token=token)
    elif request.method == "PATCH":
        changes = group_changes(_body(request))
        groups.scim_group_update(group=group, changes=changes, token=token)
        # RFC 7644 §3.5.2 allows 204: a group's whole member list (thousands) is not sent
        # back for every change; the identity providers accept it.
        return HttpResponse(status=204)
    return _answer(group_resource(group, request))


@_scim_view(("GET",))
def service_provider_config(request: HttpRequest, token: ScimToken) -> HttpResponse:
    return _answer(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_PAGE},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "The token `manage.py scim_token create` prints once.",
                    "primary": True,
                }
            ],
        }
    )
