"""Fixtures for the audit tests: users in each role, and a helper to tamper with rows."""

from __future__ import annotations

from collections.abc import Callable

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE, KNOWLEDGE_ADMIN

# The suite-wide wiring lives in tests/conftest.py (see tests/support/audit.py); importing
# it here too keeps `pytest tests/audit` green on its own. Importing twice is harmless.
from tests.support.audit import allow_audit_flush  # noqa: F401

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create:
            self.save()
            if extracted:
                self.groups.add(Group.objects.get(name=extracted))


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    def make(role: str | None = None, **kwargs: object) -> object:
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def officer(make_user):
    return make_user(COMPLIANCE_OFFICER, username="olivia")


@pytest.fixture
def employee(make_user):
    return make_user(EMPLOYEE, username="erin")


@pytest.fixture
def knowledge_admin(make_user):
    return make_user(KNOWLEDGE_ADMIN, username="adam")


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client


@pytest.fixture
def tamper() -> Callable[[str, list[object]], None]:
    """Run SQL against the audit table with its append-only triggers off.

    Only a superuser or the table's owner may disable triggers; the test database
    belongs to `postgres`, a superuser here. The triggers come back on before this
    returns, and the test's transaction is rolled back afterwards anyway.
    """

    def run(sql: str, params: list[object] | None = None) -> None:
        with connection.cursor() as cursor:
            # ALTER TABLE is refused while the transaction has deferred foreign-key
            # checks pending (the test's own inserts); run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            try:
                cursor.execute(sql, params or [])
            finally:
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")

    return run
