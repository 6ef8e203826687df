"""The compliance tests use the audit tests' people (tests/audit/conftest.py)."""

from tests.audit.conftest import (  # noqa: F401 - fixtures, found by pytest through this import
    allow_audit_flush,
    employee,
    make_user,
    officer,
    officer_client,
)
