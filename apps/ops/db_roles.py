"""What the application's database role may do: the grants every `manage.py migrate` gives.

Two roles (README "Audit trail and compliance"). The owner (`enclave_owner`) runs the
migrations and so owns every table, trigger and function. The application's role
(`DATABASE_APP_ROLE`, `enclave_app`: web, workers, beat) owns nothing, and PostgreSQL lets
only an owner or a superuser drop or disable a trigger, set `session_replication_role`,
replace a function, truncate without the privilege or drop a table: the app cannot switch
the audit trail's guards off. What it is granted:

* every table: SELECT, INSERT, UPDATE, DELETE (never TRUNCATE, REFERENCES or TRIGGER);
* the audit table: SELECT, and UPDATE of `actor_id` only (Django's SET NULL when a user is
  deleted; the trigger refuses any other change). No INSERT: it appends through
  `audit_append()`, which runs as the owner (audit migration 0004) and is executable by the
  app role alone;
* `django_migrations`: SELECT (the check for unapplied migrations);
* sequences: USAGE and SELECT; the schema: USAGE, not CREATE.

All of it is revoked and granted again after every migrate, in one transaction: a table a
later migration adds is covered as soon as it exists, a privilege dropped here is dropped
from the database too, and a running app never sees the grants half done.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from apps.audit.models import AuditEvent

logger = logging.getLogger(__name__)

AUDIT_TABLE = AuditEvent._meta.db_table

# Role and table names reach the statements as custom settings of the transaction, read
# back with current_setting() and quoted by format(%I): no SQL is built in Python.
_GRANTS = r"""
DO $$
DECLARE
    app text := current_setting('enclave.app_role');
    audit text := current_setting('enclave.audit_table');
    s text := current_schema();
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', s, app);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', s, app);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM %I', s, app);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, app);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', s, app);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', s, app);

    EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', audit, app);
    EXECUTE format('GRANT SELECT, UPDATE (actor_id) ON TABLE %I TO %I', audit, app);
    REVOKE ALL ON FUNCTION audit_append FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON FUNCTION audit_append TO %I', app);

    EXECUTE format('REVOKE ALL ON TABLE django_migrations FROM %I', app);
    EXECUTE format('GRANT SELECT ON TABLE django_migrations TO %I', app);
END;
$$;
"""

# Why the role could still switch the guards off, if it could; empty when it cannot.
_STANDING = """
SELECT r.rolsuper,
       pg_has_role(r.oid, current_user, 'MEMBER'),
       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid)
         + (SELECT count(*) FROM pg_proc p WHERE p.proowner = r.oid)
         -- the owner of a schema may drop any table in it; the database's owner owns
         -- the public schema (PostgreSQL 15)
         + (SELECT count(*) FROM pg_namespace n WHERE n.nspowner = r.oid)
         + (SELECT count(*) FROM pg_database d
             WHERE d.datdba = r.oid AND d.datname = current_database())
  FROM pg_roles r WHERE r.rolname = %s
"""


def app_role_grant(*, role: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Give `role` exactly the application's privileges on the database `using` points at.

    Run as the owner of the tables (or a superuser). Refuses a role that is a superuser,
    that is the owner or a member of it, or that owns anything here: such a role could
    disable the audit trail's triggers whatever it is granted.
    """
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(_STANDING, [role])
        row = cursor.fetchone()
        if row is None:
            raise ImproperlyConfigured(
                f"DATABASE_APP_ROLE {role!r} does not exist: create it first (make db, or "
                "docker/db-init.sh as a superuser)"
            )
        superuser, member_of_owner, owns = row
        if superuser or member_of_owner or owns:
            why = (
                "is a superuser"
                if superuser
                else "is the role migrations run as, or a member of it"
                if member_of_owner
                else f"owns {owns} objects in this database"
            )
            raise ImproperlyConfigured(
                f"DATABASE_APP_ROLE {role!r} {why}: it could switch off the audit trail. "
                "Web and workers must connect as a role that owns nothing."
            )
        cursor.execute(
            "SELECT set_config('enclave.app_role', %s, true), "
            "set_config('enclave.audit_table', %s, true)",
            [role, AUDIT_TABLE],
        )
        cursor.execute(_GRANTS)
    logger.info("granted the application's privileges to %s", role)


def grant_after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate receiver: grant DATABASE_APP_ROLE its privileges, when one is set."""
    if settings.DATABASE_APP_ROLE:
        app_role_grant(role=settings.DATABASE_APP_ROLE, using=using)
