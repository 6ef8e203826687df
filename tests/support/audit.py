"""Let Django's test flush empty the append-only audit table.

The audit table refuses TRUNCATE (a trigger installed by apps/audit/migrations/0002).
pytest-django's ``transactional_db`` (and ``live_server``, and Django's
TransactionTestCase) empty every table after each test with one ``TRUNCATE a, b, ...``
statement, which that trigger would refuse, failing the test's teardown.

``allow_audit_flush`` is a session-wide autouse fixture that wraps the PostgreSQL
backend's ``sql_flush`` so the flush becomes, in one transaction::

    ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only_truncate;
    TRUNCATE ...;
    ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only_truncate;

The trigger is off only inside the flush's own transaction (PostgreSQL DDL is
transactional) and only for TRUNCATE; UPDATE and DELETE stay refused throughout. The test
database is created by the superuser ``postgres``, who owns the table and may do this.

Wire it for the whole suite in tests/conftest.py::

    from tests.support.audit import allow_audit_flush  # noqa: F401  (autouse fixture)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations

AUDIT_TABLE = "audit_auditevent"
TRUNCATE_TRIGGER = "audit_append_only_truncate"


@contextmanager
def audit_flush_allowed() -> Iterator[None]:
    original = DatabaseOperations.sql_flush
    if getattr(original, "_allows_audit_flush", False):
        yield  # already wrapped (the fixture is imported by more than one conftest)
        return

    def sql_flush(self: Any, style: Any, tables: Any, **kwargs: Any) -> list[str]:
        statements = original(self, style, tables, **kwargs)
        if AUDIT_TABLE not in tables or not statements:
            return statements
        table = self.quote_name(AUDIT_TABLE)
        trigger = self.quote_name(TRUNCATE_TRIGGER)
        return [
            f"ALTER TABLE {table} DISABLE TRIGGER {trigger};",
            *statements,
            f"ALTER TABLE {table} ENABLE TRIGGER {trigger};",
        ]

    sql_flush._allows_audit_flush = True  # type: ignore[attr-defined]
    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]
    try:
        yield
    finally:
        DatabaseOperations.sql_flush = original  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def allow_audit_flush() -> Iterator[None]:
    with audit_flush_allowed():
        yield
