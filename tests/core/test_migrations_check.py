"""A management command pointed at an empty, unmigrated database says "run `make migrate`
first" and exits, instead of dying with a traceback in its first query."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from apps.core.migrations_check import require_migrated, unapplied_migrations

ROOT = Path(__file__).resolve().parents[2]


def _server() -> tuple[str, str, str]:
    db = connection.settings_dict
    return db["USER"] or "postgres", db["HOST"] or "127.0.0.1", str(db["PORT"] or 5432)


def _manage(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(  # noqa: S603 - our own manage.py, no shell
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A fresh database with no tables at all, dropped afterwards; its DATABASE_URL."""
    user, host, port = _server()
    name = f"enclave_unmigrated_test_{uuid.uuid4().hex[:8]}"
    base = ["-h", host, "-p", port, "-U", user]
    subprocess.run(["createdb", *base, name], check=True, capture_output=True)
    try:
        yield f"postgres://{user}@{host}:{port}/{name}"
    finally:
        subprocess.run(["dropdb", *base, "--if-exists", name], check=False, capture_output=True)


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate_retrieval", "--beir", "eval-does-not-exist"],
        ["evaluate_answers", "--corpus", "apps/knowledge/demo", "--qa", "no-such.jsonl"],
    ],
)
def test_command_on_an_unmigrated_database_says_run_make_migrate(empty_database, args):
    result = _manage(empty_database, *args)
    assert result.returncode != 0
    assert "run `make migrate` first" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


@pytest.mark.django_db
def test_migrated_test_database_passes():
    assert unapplied_migrations() == []
    require_migrated()  # does not raise


def test_missing_database_says_what_to_check():
    user, host, port = _server()
    url = f"postgres://{user}@{host}:{port}/enclave_missing_{uuid.uuid4().hex[:8]}"
    result = _manage(url, "evaluate_retrieval", "--beir", "eval-does-not-exist")
    assert result.returncode != 0
    assert "check DATABASE_URL" in result.stderr and "make migrate" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
