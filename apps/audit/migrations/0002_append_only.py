"""Make the audit table append-only in PostgreSQL itself.

* UPDATE and DELETE (row triggers) and TRUNCATE (statement trigger) raise
  insufficient_privilege, whatever the client: the ORM, raw SQL, psql. The one UPDATE let
  through is Django's ON DELETE SET NULL of `actor_id` when a user is deleted, and only
  if nothing else in the row changes (the hash covers the copied actor_pk and username).
* Every INSERT must extend the chain: the next id, the previous event's hash as
  prev_hash, and a time not before the previous event's. So even a writer that bypasses
  audit_record cannot fork the chain or leave a gap.

Only the table's owner or a superuser can disable these triggers; run the application
under a role that owns neither (see README, "Audit trail and compliance").
"""

from django.db import migrations

REFUSE_CHANGE = r"""
CREATE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
           AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit events are never changed or deleted; archive old ones with manage.py audit_export.';
END;
$$;

CREATE TRIGGER audit_append_only_rows
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

CREATE TRIGGER audit_append_only_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

CHECK_APPEND = r"""
CREATE FUNCTION audit_check_append() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_id bigint;
    last_hash varchar;
    last_time timestamptz;
BEGIN
    SELECT id, hash, time INTO last_id, last_hash, last_time
        FROM audit_auditevent ORDER BY id DESC LIMIT 1;
    IF last_id IS NULL THEN
        IF NEW.id <> 1 OR NEW.prev_hash <> repeat('0', 64) THEN
            RAISE EXCEPTION 'audit chain: the first event must be #1 with the genesis prev_hash'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.id <> last_id + 1 THEN
        RAISE EXCEPTION 'audit chain: next event must be #%, got #%', last_id + 1, NEW.id
            USING ERRCODE = 'integrity_constraint_violation';
    ELSIF NEW.prev_hash <> last_hash THEN
        RAISE EXCEPTION 'audit chain: event #% must link to the hash of #%', NEW.id, last_id
            USING ERRCODE = 'integrity_constraint_violation';
    ELSIF NEW.time < last_time THEN
        RAISE EXCEPTION 'audit chain: event #% is earlier than #%', NEW.id, last_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_check_append
    BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_check_append();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunSQL(
            REFUSE_CHANGE,
            reverse_sql="""
                DROP TRIGGER audit_append_only_truncate ON audit_auditevent;
                DROP TRIGGER audit_append_only_rows ON audit_auditevent;
                DROP FUNCTION audit_refuse_change();
            """,
        ),
        migrations.RunSQL(
            CHECK_APPEND,
            reverse_sql="""
                DROP TRIGGER audit_check_append ON audit_auditevent;
                DROP FUNCTION audit_check_append();
            """,
        ),
    ]
