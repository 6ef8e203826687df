#!/usr/bin/env bash
# Enclave's two database roles and its database, idempotently (README "Audit trail").
#
#   owner  DB_OWNER_ROLE (enclave_owner): owns the database, its schema and every table,
#          trigger and function; only `manage.py migrate` connects as it.
#   app    DB_APP_ROLE (enclave_app): web, workers and beat. Owns nothing; each migrate
#          grants it what it needs (apps/ops/db_roles.py), so it cannot switch off the
#          audit trail's triggers.
#
# Run as a superuser; libpq's PGHOST, PGPORT and PGUSER say where. `make db` runs it on
# this machine (trust authentication: no passwords). The postgres image of
# docker/compose.yaml runs it once, when it creates its data directory, with
# DB_OWNER_PASSWORD and DB_APP_PASSWORD. An existing database whose tables another role
# owns (a `make run` or a compose volume from before the split) is handed to the owner.
set -euo pipefail

export PGUSER=${PGUSER:-${POSTGRES_USER:-postgres}}
export DB_OWNER_PASSWORD=${DB_OWNER_PASSWORD:-}
export DB_APP_PASSWORD=${DB_APP_PASSWORD:-}
db=${DB_NAME:-enclave}
owner=${DB_OWNER_ROLE:-enclave_owner}
app=${DB_APP_ROLE:-enclave_app}

if [[ "$owner" == "$PGUSER" || "$app" == "$PGUSER" || "$owner" == "$app" ]]; then
  echo "db-init: the owner ($owner), the app ($app) and the superuser ($PGUSER) must be three roles" >&2
  exit 2
fi

run_psql() {
  psql -X -q -v ON_ERROR_STOP=1 -v db="$db" -v owner="$owner" -v app="$app" "$@"
}

# Roles. Created in a DO block that tolerates a concurrent creator (two `make db`, or test
# sessions, at once); the attributes are set again each time, so a role made by hand with
# more rights loses them. Passwords come from the environment (\getenv), never argv.
run_psql -d postgres <<'SQL'
\getenv owner_pw DB_OWNER_PASSWORD
\getenv app_pw DB_APP_PASSWORD
SELECT set_config('enclave.owner', :'owner', false) AS o,
       set_config('enclave.app', :'app', false) AS a \gset
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY[current_setting('enclave.owner'), current_setting('enclave.app')]
    LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
        EXECUTE format(
            'ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
            r);
    END LOOP;
END;
$$;
SELECT format('ALTER ROLE %I PASSWORD %L', :'owner', :'owner_pw') WHERE :'owner_pw' <> '' \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'app', :'app_pw') WHERE :'app_pw' <> '' \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'owner') \gexec
SQL

# Inside the database: the public schema is the owner's (it holds CREATE there, nobody
# else does), and whatever an earlier role created in it becomes the owner's.
run_psql -d "$db" <<'SQL'
SELECT format('ALTER SCHEMA public OWNER TO %I', :'owner') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('ALTER TABLE public.%I OWNER TO %I', c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND pg_get_userbyid(c.relowner) <> :'owner' \gexec
SELECT format('ALTER SEQUENCE public.%I OWNER TO %I', c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'S'
   AND pg_get_userbyid(c.relowner) <> :'owner'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')) \gexec
SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, :'owner')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> :'owner'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.objid = p.oid AND d.deptype = 'e') \gexec
SQL
