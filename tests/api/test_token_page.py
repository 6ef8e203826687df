"""The API tokens page: a token is shown once, stored as a digest, listed, revoked by its
owner only; every step audited by the token's id."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.accounts.tokens import TokenRefused, token_authenticate, token_digest
from apps.audit.models import AuditEvent
from apps.core.roles import EMPLOYEE

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(client):
    user = User.objects.create_user("ann", password="pw-ann-12345")
    user.groups.add(Group.objects.get(name=EMPLOYEE))
    client.force_login(user)
    return user


def _secret(html: str) -> str:
    found = re.findall(r'<code class="token-secret">(enc_[A-Za-z0-9_-]+)</code>', html)
    assert len(found) == 1, html
    return found[0]


def test_a_token_is_shown_once_and_only_its_digest_is_kept(client, ann):
    page = client.post(reverse("api:tokens"), {"name": "my script", "days": "30"})
    assert page.status_code == 200
    secret = _secret(page.content.decode())
    token = ApiToken.objects.get(user=ann)
    assert token.digest == token_digest(secret) and secret not in token.digest
    assert secret.startswith(token.prefix) and len(secret) > 40
    again = client.get(reverse("api:tokens")).content.decode()
    assert secret not in again and token.prefix in again and "my script" in again
    assert token_authenticate(f"Bearer {secret}") == token
    created = AuditEvent.objects.get(action="api_token.created")
    assert created.details["token_id"] == token.pk and secret not in str(created.details)


@pytest.mark.parametrize(
    ("data", "error"),
    [({"name": "", "days": "30"}, "required"), ({"name": "x", "days": "3650"}, "valid choice")],
)
def test_a_bad_form_creates_nothing(client, ann, data, error):
    page = client.post(reverse("api:tokens"), data)
    assert page.status_code == 400 and error in page.content.decode()
    assert not ApiToken.objects.exists()


def test_only_the_owner_revokes_and_a_revoked_token_stops(client, ann):
    secret = _secret(
        client.post(reverse("api:tokens"), {"name": "a", "days": "7"}).content.decode()
    )
    token = ApiToken.objects.get()
    other = User.objects.create_user("bo", password="pw-bo-123456")
    other.groups.add(Group.objects.get(name=EMPLOYEE))
    client.force_login(other)
    assert client.post(reverse("api:revoke", args=[token.pk])).status_code == 404
    assert token_authenticate(f"Bearer {secret}") == token
    client.force_login(ann)
    assert client.post(reverse("api:revoke", args=[token.pk])).status_code == 302
    with pytest.raises(TokenRefused, match="revoked"):
        token_authenticate(f"Bearer {secret}")
    revoked = AuditEvent.objects.get(action="api_token.revoked")
    assert revoked.actor == ann and revoked.details["token_id"] == token.pk
    assert revoked.details["reason"] == "revoked by its owner"
    assert "revoked" in client.get(reverse("api:tokens")).content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get(reverse("api:tokens")).status_code == 302
