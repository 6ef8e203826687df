"""Attack: the application's database role tries to switch off the audit trail.

The database is built the way `make run` and compose build it, by the same code:
docker/db-init.sh (as the superuser) creates the owner and app roles and a database the
owner owns; `manage.py migrate` runs as the owner and grants the app role its privileges
(apps/ops/db_roles.py, on post_migrate). Then, connected as the app role over its own
psycopg connection, each way of changing, removing or unguarding audit events is tried,
and must fail with PostgreSQL's permission error while the chain still verifies. The app
role's normal work (appending through audit_record, reading, deleting a user) still works.

Needs no Django test database: everything runs against a throw-away database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import errors

ROOT = Path(__file__).resolve().parents[2]
OWNER = "enclave_owner"
APP = "enclave_app"

ATTACKS = {
    "drop the append-only trigger": "DROP TRIGGER audit_append_only_rows ON audit_auditevent",
    "disable the triggers": "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
    "disable every trigger": "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
    "disable the truncate trigger": (
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only_truncate"
    ),
    "skip triggers for the session": "SET session_replication_role = replica",
    "truncate": "TRUNCATE audit_auditevent",
    "truncate through a cascade": "TRUNCATE auth_user CASCADE",
    "update an event": "UPDATE audit_auditevent SET actor_username = 'mallory' WHERE id = 2",
    "update every hash": "UPDATE audit_auditevent SET hash = prev_hash",
    "re-point an actor": (
        "UPDATE audit_auditevent SET actor_id = (SELECT min(id) FROM auth_user) "
        "WHERE actor_id IS NOT NULL"
    ),
    "clear an actor and rename it": (
        "UPDATE audit_auditevent SET actor_id = NULL, actor_username = 'x' "
        "WHERE actor_id IS NOT NULL"
    ),
    "delete an event": "DELETE FROM audit_auditevent WHERE id = 3",
    "delete every event": "DELETE FROM audit_auditevent",
    "drop the table": "DROP TABLE audit_auditevent",
    "drop it with everything": "DROP TABLE audit_auditevent CASCADE",
    "rename the table away": "ALTER TABLE audit_auditevent RENAME TO audit_old",
    "insert around the append function": (
        "INSERT INTO audit_auditevent (id, time, actor_pk, actor_username, action, "
        "target_type, target_id, target_repr, details_json, conversation_id, labels, "
        "left_premises, prev_hash, hash) SELECT id + 1, now(), NULL, '', 'auth.login', '', "
        "'', '', '{}', '', '{}', false, hash, repeat('0', 64) FROM audit_auditevent "
        "ORDER BY id DESC LIMIT 1"
    ),
    "replace the guard function": (
        "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$"
    ),
    "replace the append function's rights": "ALTER FUNCTION audit_append SECURITY INVOKER",
    "drop the append function": "DROP FUNCTION audit_append",
    "add a trigger of its own": (
        "CREATE TRIGGER mine BEFORE INSERT ON audit_auditevent "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
    ),
    "take over the table": f"ALTER TABLE audit_auditevent OWNER TO {APP}",
    "become the owner": f"SET ROLE {OWNER}",
    "create a shadow table": "CREATE TABLE public.audit_shadow (id bigint)",
    "skip foreign keys on users": "ALTER TABLE auth_user DISABLE TRIGGER ALL",
}


def _superuser() -> dict[str, str]:
    db = settings.DATABASES["default"]
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": str(db["PORT"] or 5432),
        "user": db["USER"] or "postgres",
    }


def _url(role: str, dbname: str) -> str:
    su = _superuser()
    return f"postgres://{role}@{su['host']}:{su['port']}/{dbname}"


def _env(**extra: str) -> dict[str, str]:
    # CELERY_BROKER_URL: nothing here enqueues, but a stray task must never reach the
    # queue of a `make run` on this machine.
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "DATABASE_APP_ROLE": "",
        **extra,
    }


def _manage(*args: str, role: str, dbname: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(DATABASE_URL=_url(role, dbname), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database made as `make db` + `make migrate` make theirs, dropped afterwards."""
    name = f"enclave_roles_{uuid.uuid4().hex[:10]}"
    su = _superuser()
    init = subprocess.run(
        [str(ROOT / "docker" / "db-init.sh")],
        env={
            **os.environ,
            "PGHOST": su["host"],
            "PGPORT": su["port"],
            "PGUSER": su["user"],
            "DB_NAME": name,
            "DB_OWNER_ROLE": OWNER,
            "DB_APP_ROLE": APP,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    try:
        done = _manage(
            "migrate", "--no-input", "-v", "0", role=OWNER, dbname=name, DATABASE_APP_ROLE=APP
        )
        assert done.returncode == 0, done.stderr
        yield name
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **su) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def events(database: str) -> str:
    """Events appended by the app role through the normal service, a user deleted after."""
    done = _manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from apps.audit.services import audit_record\n"
        "user = User.objects.create_user('leaver')\n"
        "for n in range(3):\n"
        "    audit_record(actor=user, action='chat.question', details={'n': n})\n"
        "audit_record(actor=None, action='document.uploaded', details={'label': 'public'})\n"
        "user.delete()\n"
        "stayer = User.objects.create_user('stayer')\n"
        "audit_record(actor=stayer, action='auth.login', details={'ip': '10.0.0.8'})\n",
        role=APP,
        dbname=database,
    )
    assert done.returncode == 0, done.stderr
    return database


def _as_app(dbname: str) -> psycopg.Connection:
    su = _superuser()
    return psycopg.connect(host=su["host"], port=su["port"], user=APP, dbname=dbname)


def _rows(dbname: str) -> list[tuple]:
    with _as_app(dbname) as conn:
        return conn.execute(
            "SELECT id, actor_id, actor_username, action, details_json, prev_hash, hash "
            "FROM audit_auditevent ORDER BY id"
        ).fetchall()


def _verify(dbname: str) -> str:
    done = _manage("audit_verify", role=APP, dbname=dbname)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_app_role_owns_nothing_and_is_no_superuser(events):
    with _as_app(events) as conn:
        assert conn.execute(
            "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (APP, False, False, False, False)
        owned = conn.execute(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid) "
            "+ (SELECT count(*) FROM pg_proc WHERE proowner = r.oid) "
            "+ (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid) "
            "FROM pg_roles r WHERE rolname = current_user"
        ).fetchone()
        assert owned == (0,)
        table_owner = conn.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'audit_auditevent'"
        ).fetchone()
        assert table_owner == (OWNER,)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_app_role_cannot_switch_off_or_change_the_audit_trail(events, attack):
    before = _rows(events)
    assert before
    with _as_app(events) as conn:
        with pytest.raises(errors.InsufficientPrivilege) as refused:
            conn.execute(ATTACKS[attack])
        conn.rollback()
        # The guards are all still there and on.
        triggers = conn.execute(
            "SELECT tgname, tgenabled FROM pg_trigger "
            "WHERE tgrelid = 'audit_auditevent'::regclass AND NOT tgisinternal ORDER BY tgname"
        ).fetchall()
        assert conn.execute("SHOW session_replication_role").fetchone() == ("origin",)
    message = str(refused.value)
    assert any(why in message for why in ("must be owner", "permission denied", "append-only")), (
        message
    )
    assert triggers == [
        ("audit_append_only_rows", "O"),
        ("audit_append_only_truncate", "O"),
        ("audit_check_append", "O"),
    ]
    assert _rows(events) == before


def test_after_every_attack_the_chain_verifies_and_the_app_still_appends(events):
    for sql in ATTACKS.values():
        with _as_app(events) as conn:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql)
            conn.rollback()
    assert "Audit chain intact: 5 events" in _verify(events)
    # Normal work goes on: an append through the service, a read, a user deleted.
    done = _manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from apps.audit.models import AuditEvent\n"
        "from apps.audit.services import audit_record\n"
        "user = User.objects.create_user('after')\n"
        "audit_record(actor=user, action='auth.login', details={'ip': '10.0.0.9'})\n"
        "print(AuditEvent.objects.filter(actor=user).count())\n"
        "user.delete()\n",
        role=APP,
        dbname=events,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1")
    rows = _rows(events)
    assert [(r[1], r[3]) for r in rows] == [
        (None, "chat.question"),
        (None, "chat.question"),
        (None, "chat.question"),
        (None, "document.uploaded"),
        (rows[4][1], "auth.login"),
        (None, "auth.login"),
    ]
    assert rows[4][1] is not None
    # Usernames are stored under the person's key (apps/audit/personal.py): ciphertext in
    # the row, the name again once opened, and a deleted user's events keep theirs.
    assert [r[2][:5] for r in rows] == ["pii1."] * 3 + [""] + ["pii1."] * 2
    assert "leaver" not in repr(rows)
    opened = _manage(
        "shell",
        "-c",
        "from apps.audit.models import AuditEvent\n"
        "from apps.audit.personal import reveal_events\n"
        "print([e.actor_username for e in reveal_events(AuditEvent.objects.order_by('id'))])\n",
        role=APP,
        dbname=events,
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip().splitlines()[-1] == str(
        ["leaver", "leaver", "leaver", "", "stayer", "after"]
    )
    assert "Audit chain intact: 6 events" in _verify(events)


def test_a_table_added_by_a_later_migration_is_granted_at_that_migrate(events):
    su = _superuser()
    with psycopg.connect(
        host=su["host"], port=su["port"], user=OWNER, dbname=events, autocommit=True
    ) as owner:
        owner.execute("CREATE TABLE later_table (id bigint GENERATED BY DEFAULT AS IDENTITY)")
    with _as_app(events) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("INSERT INTO later_table DEFAULT VALUES")
    done = _manage(
        "migrate", "--no-input", "-v", "0", role=OWNER, dbname=events, DATABASE_APP_ROLE=APP
    )
    assert done.returncode == 0, done.stderr
    with _as_app(events) as conn:
        conn.execute("INSERT INTO later_table DEFAULT VALUES")
        assert conn.execute("SELECT count(*) FROM later_table").fetchone() == (1,)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("TRUNCATE later_table")
    # The audit table's exception survives the re-grant.
    with _as_app(events) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("DELETE FROM audit_auditevent")


def test_migrate_refuses_to_grant_to_a_role_that_could_switch_the_guards_off(events):
    su = _superuser()
    for role, why in ((OWNER, "the role migrations run as"), (su["user"], "superuser")):
        done = _manage(
            "migrate", "--no-input", "-v", "0", role=OWNER, dbname=events, DATABASE_APP_ROLE=role
        )
        assert done.returncode != 0
        assert "DATABASE_APP_ROLE" in done.stderr and why in done.stderr, done.stderr
