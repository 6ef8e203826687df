"""SCIM's other requests over HTTP: the token, filters, paging, PUT, the PATCH spellings
identity providers use, and refusals that change nothing."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth.models import Group, User

from apps.audit.models import AuditEvent
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.scim.auth import scim_token_revoke
from apps.scim.models import ScimToken
from tests.scim.conftest import IdP, patch_op

pytestmark = pytest.mark.django_db(transaction=True)

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _user(idp: IdP, name: str) -> str:
    return idp.ok("POST", "/Users", {"userName": name, "name": {"givenName": name}})["id"]


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Basic c2NpbTpzY2lt", "Bearer scim_wrong", "Bearer enc_notscim"]
)
def test_without_the_idps_token_nothing_is_answered(scim_web, idp, header):
    response = httpx.get(f"{scim_web.url}/scim/v2/Users", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["schemas"] == [ERROR] and response.headers["WWW-Authenticate"]
    assert "SCIM token" in response.json()["detail"]


def test_a_revoked_token_stops_at_once(scim_web, idp):
    assert idp.call("GET", "/Users").status_code == 200
    scim_token_revoke(token=ScimToken.objects.get())
    assert idp.call("GET", "/Users").status_code == 401
    assert AuditEvent.objects.filter(action="scim.token_revoked").count() == 1


def test_only_its_digest_is_stored(idp):
    token = ScimToken.objects.get()
    secret = idp.http.headers["Authorization"].split()[1]
    assert token.digest != secret and secret not in token.prefix + token.digest
    assert len(token.digest) == 64 and secret.startswith(token.prefix)


def test_filters_page_and_refuse_what_they_cannot_do(idp):
    for n in range(5):
        _user(idp, f"user{n}@example.com")
    found = idp.ok("GET", "/Users", filter='userName eq "USER3@example.com"')
    assert [r["userName"] for r in found["Resources"]] == ["user3@example.com"]
    page = idp.ok("GET", "/Users", startIndex="2", count="2")
    assert page["totalResults"] == 5 and page["startIndex"] == 2
    assert [r["userName"] for r in page["Resources"]] == ["user1@example.com", "user2@example.com"]
    for bad in ['userName co "user"', 'emails eq "x"', "userName eq user1", 'displayName eq "x"']:
        response = idp.call("GET", "/Users", filter=bad)
        assert response.status_code == 400, bad
        assert response.json()["scimType"] == "invalidFilter"
    groups = idp.ok(
        "GET", "/Groups", filter=f'displayName eq "{EMPLOYEE}"', excludedAttributes="members"
    )
    assert [g["displayName"] for g in groups["Resources"]] == [EMPLOYEE]
    assert "members" not in groups["Resources"][0]


def test_a_taken_username_is_409_and_creates_nothing(idp):
    _user(idp, "bob@example.com")
    response = idp.call("POST", "/Users", {"userName": "BOB@example.com"})
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"
    assert User.objects.filter(username__iexact="bob@example.com").count() == 1
    bad = idp.call("POST", "/Users", {"userName": "bob smith <b@x>"})
    assert bad.status_code == 400 and "letters, digits" in bad.json()["detail"]


def test_put_replaces_a_user_and_patch_reactivates(idp):
    user_id = _user(idp, "carol@example.com")
    body = {
        "userName": "carol.k@example.com",
        "name": {"givenName": "Carol", "familyName": "K"},
        "emails": [{"value": "carol.k@example.com", "primary": True}],
        "active": False,
    }
    replaced = idp.ok("PUT", f"/Users/{user_id}", body)
    assert (replaced["userName"], replaced["name"]["familyName"], replaced["active"]) == (
        "carol.k@example.com",
        "K",
        False,
    )
    again = idp.ok(
        "PATCH", f"/Users/{user_id}", patch_op({"op": "replace", "path": "active", "value": True})
    )
    assert again["active"] is True and User.objects.get(pk=user_id).is_active
    assert AuditEvent.objects.filter(action="scim.user_reactivated").count() == 1
    bad = idp.call(
        "PATCH",
        f"/Users/{user_id}",
        patch_op({"op": "replace", "path": "active", "value": "maybe"}),
    )
    assert bad.status_code == 400 and User.objects.get(pk=user_id).is_active


def test_group_membership_by_every_spelling(idp):
    a, b, c = (_user(idp, f"{n}@example.com") for n in "abc")
    group = idp.ok("POST", "/Groups", {"displayName": "Legal", "members": [{"value": a}]})
    gid = group["id"]
    # Entra ID removes with a value list; Okta replaces the whole list.
    idp.ok(
        "PATCH",
        f"/Groups/{gid}",
        patch_op({"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}),
    )
    idp.ok(
        "PATCH",
        f"/Groups/{gid}",
        patch_op({"op": "remove", "path": "members", "value": [{"value": a}]}),
    )
    assert {m["value"] for m in idp.ok("GET", f"/Groups/{gid}")["members"]} == {b, c}
    idp.ok("PUT", f"/Groups/{gid}", {"displayName": "Legal team", "members": [{"value": c}]})
    final = idp.ok("GET", f"/Groups/{gid}")
    assert final["displayName"] == "Legal team" and [m["value"] for m in final["members"]] == [c]
    changes = AuditEvent.objects.filter(action="group.membership_changed").order_by("id")
    assert [(e.details["added"], e.details["removed"]) for e in changes] == [
        (["a@example.com"], []),
        (["b@example.com", "c@example.com"], []),
        ([], ["a@example.com"]),
        ([], ["b@example.com"]),
    ]
    # An unknown member changes nothing.
    bad = idp.call(
        "PATCH",
        f"/Groups/{gid}",
        patch_op({"op": "add", "path": "members", "value": [{"value": a}, {"value": "999999"}]}),
    )
    assert bad.status_code == 400 and "999999" in bad.json()["detail"]
    assert [m["value"] for m in idp.ok("GET", f"/Groups/{gid}")["members"]] == [c]
    assert idp.call("DELETE", f"/Groups/{gid}").status_code == 204
    assert not Group.objects.filter(pk=gid).exists()


def test_role_groups_gain_members_but_are_not_renamed_or_deleted(idp):
    role = Group.objects.get(name=KNOWLEDGE_ADMIN)
    rename = idp.call(
        "PATCH",
        f"/Groups/{role.pk}",
        patch_op({"op": "replace", "path": "displayName", "value": "Admins"}),
    )
    assert rename.status_code == 400 and rename.json()["scimType"] == "mutability"
    assert idp.call("DELETE", f"/Groups/{role.pk}").status_code == 400
    assert Group.objects.filter(pk=role.pk, name=KNOWLEDGE_ADMIN).exists()


@pytest.mark.parametrize("path", ["/Users/abc", "/Users/99999999", "/Groups/%C2%B2"])
def test_an_unknown_id_is_404_in_scims_shape(idp, path):
    response = idp.call("GET", path)
    assert response.status_code == 404 and response.json()["schemas"] == [ERROR]


def test_the_service_provider_config_says_what_is_supported(idp):
    config = idp.ok("GET", "/ServiceProviderConfig")
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is False
