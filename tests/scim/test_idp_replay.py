"""The request sequence an identity provider sends (Okta's order: look the user up,
create, look the group up, add, remove, deactivate), replayed over HTTP against a live
gunicorn, with the person's access checked before and after each step: the search path
(`retrieve`, what the next question reads), a document download over HTTP with their
session, and an API token over HTTP."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.test import Client

from apps.accounts.models import ApiToken
from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE
from apps.knowledge import services as knowledge
from apps.knowledge.selectors import readable_collection_ids
from apps.search.search import retrieve
from tests.conftest import wait_for_documents
from tests.scim.conftest import patch_op

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]

BUDGET = "# Finance\n\nThe travel budget for 2027 is 80,000 euros per department.\n"
QUESTION = "What is the travel budget?"


def _finance_collection(group: Group):
    collection = knowledge.collection_create(
        name="Finance", actor=None, default_label=Label.CONFIDENTIAL, groups=[group]
    )
    doc, _ = knowledge.document_create(
        collection=collection, upload=ContentFile(BUDGET.encode(), name="budget.md"), user=None
    )
    assert wait_for_documents([doc.pk])[doc.pk].status == "indexed"
    return collection, doc


class Access:
    """What `user` can reach right now, each way they could reach it."""

    def __init__(self, web, user: User, doc) -> None:
        self.web, self.user, self.doc = web, user, doc
        browser = Client()
        browser.force_login(user)  # a real session row, as a sign-in leaves
        self.session = browser.cookies["sessionid"].value
        self.token = token_create(user=user, name="cli", days=30).secret

    def searched_documents(self) -> set[int]:
        user = User.objects.get(pk=self.user.pk)
        return {h.document_id for h in retrieve(user=user, question=QUESTION).hits}

    def download(self) -> int:
        url = f"{self.web.url}/knowledge/documents/{self.doc.pk}/download/"
        return httpx.get(url, cookies={"sessionid": self.session}).status_code

    def api(self) -> int:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.get(f"{self.web.url}/v1/models", headers=headers).status_code


def test_an_identity_providers_sequence_grants_and_takes_away_access(scim_web, idp):
    # 0. The IdP looks the user up; nobody is there yet.
    found = idp.ok("GET", "/Users", filter='userName eq "alice@example.com"')
    assert found["totalResults"] == 0 and found["Resources"] == []

    # 1. Create the user: she exists, active, and reads nothing.
    created = idp.call(
        "POST",
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice@example.com",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [{"value": "alice@example.com", "primary": True, "type": "work"}],
            "active": True,
        },
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    alice = User.objects.get(pk=user_id)
    assert alice.is_active and not alice.has_usable_password()
    finance = Group.objects.get(pk=idp.ok("POST", "/Groups", {"displayName": "Finance"})["id"])
    collection, doc = _finance_collection(finance)  # a knowledge admin grants it
    access = Access(scim_web, alice, doc)
    assert readable_collection_ids(alice) == []
    assert access.searched_documents() == set()
    assert access.download() == 403  # no employee role yet
    assert access.api() == 403

    # 2. Add her to the employee role and to Finance: her next question reads Finance.
    employees = idp.ok("GET", "/Groups", filter=f'displayName eq "{EMPLOYEE}"')["Resources"][0]
    for group_id in (employees["id"], str(finance.pk)):
        idp.ok(
            "PATCH",
            f"/Groups/{group_id}",
            patch_op({"op": "add", "path": "members", "value": [{"value": user_id}]}),
        )
    assert readable_collection_ids(alice) == [collection.pk]
    assert access.searched_documents() == {doc.pk}
    assert access.download() == 200
    assert access.api() == 200
    added = AuditEvent.objects.filter(action="group.membership_changed", target_id=str(finance.pk))
    assert [(e.details["source"], e.details["added"], e.details["collections"]) for e in added] == [
        ("scim", ["alice@example.com"], [collection.pk])
    ]

    # 3. PATCH her out of Finance (Okta's filtered path): gone on the next question.
    idp.ok(
        "PATCH",
        f"/Groups/{finance.pk}",
        patch_op({"op": "remove", "path": f'members[value eq "{user_id}"]'}),
    )
    assert readable_collection_ids(alice) == []
    assert access.searched_documents() == set()
    assert access.download() == 404
    assert access.api() == 200  # still an employee
    removed = AuditEvent.objects.filter(action="group.membership_changed").latest("id")
    assert removed.details["removed"] == ["alice@example.com"]
    assert removed.details["source"] == "scim"

    # 4. Deactivate (Entra ID's spelling: no path, "False" as a string): signed out, every
    # token revoked, audited.
    idp.ok("PATCH", f"/Users/{user_id}", patch_op({"op": "Replace", "value": {"active": "False"}}))
    assert access.api() == 401
    assert (
        httpx.get(f"{scim_web.url}/chat/", cookies={"sessionid": access.session}).status_code == 302
    )  # to the sign-in page
    assert not Session.objects.filter(session_key=access.session).exists()
    assert not ApiToken.objects.filter(user=alice, revoked_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="scim.user_deactivated")
    assert event.details["sessions_ended"] == 1 and event.details["tokens_revoked"] == 1
    assert event.details["source"] == "scim"
    assert idp.ok("GET", f"/Users/{user_id}")["active"] is False

    # 5. DELETE: gone for SCIM, the audit trail keeps her name.
    assert idp.call("DELETE", f"/Users/{user_id}").status_code == 204
    assert idp.call("GET", f"/Users/{user_id}").status_code == 404
    trail = AuditEvent.objects.filter(target_type="auth.user", target_id=str(user_id)).order_by(
        "id"
    )
    assert [e.action for e in trail if e.action.startswith("scim.")] == [
        "scim.user_created",
        "scim.user_deactivated",
        "scim.user_deleted",
    ]
