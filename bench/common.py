"""What the benchmarks share: a throw-away database and environment of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def prepare_database(name: str) -> str:
    """Create database `name` if it is missing; return its URL."""
    exists = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
         f"SELECT 1 FROM pg_database WHERE datname='{name}'", "postgres"],  # noqa: S608 - ours
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if exists != "1":
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def isolate(*, db_url: str, var: Path, broker: str) -> dict[str, str]:
    """Point this process (and the children it starts with os.environ) at `var`, the
    database and the broker given, away from a running `make run`; then set Django up."""
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "VAR_DIR": str(var),
            "MEDIA_ROOT": str(var / "media"),
            "VECTOR_DATA_DIR": str(var / "vectors"),
            "VECTOR_SOCKET": str(var / "vs.sock"),
            "CELERY_BROKER_URL": broker,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return dict(os.environ)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
