"""OpenID Connect sign-in: claims → Django groups, and the URLs only when it is on.

No identity provider is needed: the mapping is a function of a claims dict, and the
backend's create/update steps take the claims the provider would have returned.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from apps.accounts.claims import groups_from_claims, managed_groups, parse_group_map
from apps.audit.models import AuditEvent
from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE, KNOWLEDGE_ADMIN

ROOT = Path(__file__).resolve().parents[2]

MAP = parse_group_map(
    [
        "enclave-users=Employees",
        "kb-admins=Knowledge admins",
        "kb-admins=Employees",  # one value may grant several groups
        "audit=Compliance officers",
        "finance=Finance",
    ]
)


def test_group_map_parses_pairs_and_refuses_garbage():
    assert MAP["kb-admins"] == (KNOWLEDGE_ADMIN, EMPLOYEE)
    assert managed_groups(MAP) == {EMPLOYEE, KNOWLEDGE_ADMIN, COMPLIANCE_OFFICER, "Finance"}
    for bad in ("no-equals", "=Employees", "value="):
        with pytest.raises(ValueError):
            parse_group_map([bad])


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"groups": ["enclave-users", "finance"]}, {EMPLOYEE, "Finance"}),
        ({"groups": ["kb-admins"]}, {KNOWLEDGE_ADMIN, EMPLOYEE}),
        ({"groups": "audit"}, {COMPLIANCE_OFFICER}),  # a single group sent as a string
        ({"groups": "audit enclave-users"}, {COMPLIANCE_OFFICER, EMPLOYEE}),
        ({"groups": "audit,finance"}, {COMPLIANCE_OFFICER, "Finance"}),
        ({"groups": ["Domain Admins", "enclave-users"]}, {EMPLOYEE}),  # unmapped: nothing
        ({"groups": ["ENCLAVE-USERS"]}, set()),  # values are matched exactly
        ({"groups": [{"name": "audit"}, 7, None]}, set()),  # malformed entries grant nothing
        ({"groups": None}, set()),
        ({}, set()),
        ({"roles": ["audit"]}, set()),  # another claim than the configured one
    ],
)
def test_groups_from_claims(claims, expected):
    assert groups_from_claims(claims, claim="groups", group_map=MAP) == expected


@pytest.fixture
def backend(settings):
    settings.OIDC_RP_CLIENT_ID = "enclave"
    settings.OIDC_RP_CLIENT_SECRET = "secret"  # noqa: S105
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://idp.example.com/token"
    settings.OIDC_OP_USER_ENDPOINT = "https://idp.example.com/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = "https://idp.example.com/jwks"
    settings.OIDC_GROUP_MAP = MAP
    settings.OIDC_GROUPS_CLAIM = "groups"
    from apps.accounts.oidc import EnclaveOIDCBackend

    return EnclaveOIDCBackend()


@pytest.mark.django_db
def test_first_sign_in_creates_the_user_with_mapped_groups(backend):
    claims = {
        "email": "nina@example.com",
        "email_verified": True,
        "preferred_username": "nina",
        "groups": ["enclave-users", "finance", "Domain Admins"],
    }
    assert backend.verify_claims(claims)
    user = backend.create_user(claims)
    assert user.username == "nina" and user.email == "nina@example.com"
    assert set(user.groups.values_list("name", flat=True)) == {EMPLOYEE, "Finance"}
    assert user.has_perm("accounts.use_assistant")
    synced = AuditEvent.objects.filter(action="auth.groups_synced").latest("id")
    assert synced.details["added"] == [EMPLOYEE, "Finance"]


@pytest.mark.django_db
def test_later_sign_ins_follow_the_provider_and_leave_unmapped_groups_alone(backend):
    user = User.objects.create_user("nina", email="nina@example.com")
    hand_granted = Group.objects.create(name="Project Bluebird")
    user.groups.add(Group.objects.get(name=EMPLOYEE), Group.objects.create(name="Finance"))
    user.groups.add(hand_granted)

    backend.update_user(user, {"email": "nina@example.com", "groups": ["audit"]})

    names = set(user.groups.values_list("name", flat=True))
    # Employees and Finance were mapped and are no longer granted: removed. Bluebird is
    # not in the mapping: an administrator's grant, kept.
    assert names == {COMPLIANCE_OFFICER, "Project Bluebird"}
    event = AuditEvent.objects.filter(action="auth.groups_synced").latest("id")
    assert event.details["removed"] == [EMPLOYEE, "Finance"]
    assert event.details["added"] == [COMPLIANCE_OFFICER]

    # Nothing changes → nothing is written.
    before = AuditEvent.objects.count()
    backend.update_user(user, {"email": "nina@example.com", "groups": ["audit"]})
    assert AuditEvent.objects.count() == before


def test_unverified_or_missing_email_is_refused(backend):
    assert not backend.verify_claims({"email": "x@example.com", "email_verified": False})
    assert not backend.verify_claims({"preferred_username": "x"})


def _urls(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; django.setup()\n"
        "from django.urls import reverse, NoReverseMatch\n"
        "from django.conf import settings\n"
        "for name in ('oidc_authentication_init', 'oidc_authentication_callback'):\n"
        "    try: print(name, reverse(name))\n"
        "    except NoReverseMatch: print(name, 'absent')\n"
        "print('backends', settings.AUTHENTICATION_BACKENDS)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "apps.config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_oidc_urls_and_backend_exist_only_when_configured():
    off = _urls(OIDC_RP_CLIENT_ID="")
    assert off.returncode == 0, off.stderr
    assert "oidc_authentication_init absent" in off.stdout
    assert "EnclaveOIDCBackend" not in off.stdout

    on = _urls(
        OIDC_RP_CLIENT_ID="enclave",
        OIDC_RP_CLIENT_SECRET="s3cret",
        OIDC_OP_AUTHORIZATION_ENDPOINT="https://idp.example.com/authorize",
        OIDC_OP_TOKEN_ENDPOINT="https://idp.example.com/token",
        OIDC_OP_USER_ENDPOINT="https://idp.example.com/userinfo",
        OIDC_OP_JWKS_ENDPOINT="https://idp.example.com/jwks",
        OIDC_GROUP_MAP="enclave-users=Employees",
    )
    assert on.returncode == 0, on.stderr
    assert "oidc_authentication_init /oidc/authenticate/" in on.stdout
    assert "oidc_authentication_callback /oidc/callback/" in on.stdout
    assert "apps.accounts.oidc.EnclaveOIDCBackend" in on.stdout


def test_half_configured_oidc_stops_start_up_naming_the_variable():
    result = _urls(OIDC_RP_CLIENT_ID="enclave", OIDC_RP_CLIENT_SECRET="s3cret")
    assert result.returncode != 0
    assert "OIDC_OP_AUTHORIZATION_ENDPOINT" in result.stderr
