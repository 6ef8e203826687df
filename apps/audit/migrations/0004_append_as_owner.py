"""audit_append() runs as the table's owner (SECURITY DEFINER).

The application's role has no INSERT on the audit table (apps/ops/db_roles.py): it appends
only through this function, which inserts with its owner's rights. Its search_path is
pinned to the schema it lives in (and pg_temp last), so nothing the caller creates can
stand in for the table or for a function it calls.
"""

from django.db import migrations

SIGNATURE = (
    "audit_append(integer, bigint, varchar, varchar, varchar, varchar, varchar, text, "
    "varchar, varchar[], boolean, text, text, text, text)"
)

FORWARD = f"""
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION {SIGNATURE} SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema()
    );
END;
$$;
"""

REVERSE = f"ALTER FUNCTION {SIGNATURE} SECURITY INVOKER RESET search_path;"


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_function")]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=REVERSE)]
