"""audit_append(): take the append lock, link, hash and insert in one round trip.

The advisory lock is held until the caller's transaction ends, so every client round
trip made while holding it costs throughput for every writer. Doing the read of the
previous event, the hash and the insert inside the database leaves one round trip (the
call) plus the commit. The text hashed is the canonical form of apps.audit.chain, whose
parts the application passes in; the function only splices in the id, the previous hash
and the time (formatted like chain.format_time) and takes sha256 of the ASCII bytes.

Lock key 7308888515501386100 is apps.audit.services.APPEND_LOCK_KEY ("encaudit").
"""

from django.db import migrations

APPEND = r"""
CREATE FUNCTION audit_append(
    p_actor_id integer,
    p_actor_pk bigint,
    p_actor_username varchar,
    p_action varchar,
    p_target_type varchar,
    p_target_id varchar,
    p_target_repr varchar,
    p_details_json text,
    p_conversation_id varchar,
    p_labels varchar[],
    p_left_premises boolean,
    p_part1 text,
    p_part2 text,
    p_part3 text,
    p_part4 text,
    OUT id bigint,
    OUT "time" timestamptz,
    OUT prev_hash varchar,
    OUT hash varchar
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last_id bigint;
    last_hash varchar;
    last_time timestamptz;
    now_ timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7308888515501386100);
    -- A new statement in a VOLATILE function gets a new snapshot (READ COMMITTED), taken
    -- after the lock was granted: it sees the event the previous holder committed.
    SELECT e.id, e.hash, e.time INTO last_id, last_hash, last_time
        FROM audit_auditevent e ORDER BY e.id DESC LIMIT 1;
    now_ := clock_timestamp();
    id := coalesce(last_id, 0) + 1;
    prev_hash := coalesce(last_hash, repeat('0', 64));
    -- Never earlier than the previous event: time order is chain order.
    "time" := CASE WHEN last_time IS NULL OR now_ >= last_time THEN now_ ELSE last_time END;
    hash := encode(sha256(convert_to(
        p_part1 || id::text || p_part2 || prev_hash || p_part3
        || to_char("time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || p_part4, 'UTF8')), 'hex');
    INSERT INTO audit_auditevent (
        id, "time", actor_id, actor_pk, actor_username, action, target_type, target_id,
        target_repr, details_json, conversation_id, labels, left_premises, prev_hash, hash
    ) VALUES (
        id, "time", p_actor_id, p_actor_pk, p_actor_username, p_action, p_target_type,
        p_target_id, p_target_repr, p_details_json, p_conversation_id, p_labels,
        p_left_premises, prev_hash, hash
    );
END;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]

    operations = [
        migrations.RunSQL(
            APPEND,
            reverse_sql="""
                DROP FUNCTION audit_append(integer, bigint, varchar, varchar, varchar,
                    varchar, varchar, text, varchar, varchar[], boolean, text, text, text, text);
            """,
        ),
    ]
