"""Whether the database a management command is about to read has every migration applied.

A command run against a fresh or half-migrated database would otherwise die deep in its
first query with `relation "auth_group" does not exist`; `require_migrated()` at the top
of its handle() turns that into one sentence that says what to do.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import Error as DatabaseError


def unapplied_migrations(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """`app.migration` names the code has and the database has not applied, in order.

    The migration recorder reads an absent django_migrations table as "nothing applied",
    so an empty database lists every migration.
    """
    executor = MigrationExecutor(connections[using])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def require_migrated(using: str = DEFAULT_DB_ALIAS) -> None:
    """Raise a CommandError saying "run `make migrate` first" unless the database is
    reachable and fully migrated."""
    name = connections[using].settings_dict.get("NAME") or "?"
    try:
        missing = unapplied_migrations(using)
    except DatabaseError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CommandError(
            f"cannot read the database {name!r} ({first_line}); check DATABASE_URL, start "
            "PostgreSQL (`make db`), then run `make migrate` first"
        ) from None
    if missing:
        raise CommandError(
            f"the database {name!r} is not migrated ({len(missing)} migrations not applied, "
            f"the first {missing[0]}): run `make migrate` first"
        )
