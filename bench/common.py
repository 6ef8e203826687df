"""What the benchmarks share: a throw-away database and environment of their own."""

from __future__ import annotations

import os
import random
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


NOTE_WORDS = (
    "invoice travel policy leave payroll laptop badge canteen parking budget contract "
    "meeting training safety holiday pension insurance supplier warehouse printer network "
    "password account refund expense approval manager office shift overtime report"
).split()


def note_text(rng: random.Random, n: int) -> str:
    """A small document of its own: a heading and 60 words drawn from NOTE_WORDS."""
    words = " ".join(rng.choice(NOTE_WORDS) for _ in range(60))
    return f"# Note {n}\n\nNote {n} says: {words}.\n"


def tree_rss(pid: int) -> int:
    """RSS in bytes of a process and all its children (a worker's pool, gunicorn's workers)."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for proc in (root, *root.children(recursive=True)):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # a child replaced between the listing and the read
    return total


def start_model_and_store(var: Path):  # noqa: ANN201 - returns processes of tests/support
    """The vector store owner and the packaged llama.cpp model server for a benchmark run,
    with this process's settings pointed at both: (store process, model process, base URL).
    Call after `isolate`."""
    from django.conf import settings

    from apps.retrieval.store import reset_store
    from tests.support.llm import free_port, start_llm_server
    from tests.support.vectorstore import start_vectorstore

    store_proc = start_vectorstore(var / "vectors", var / "vs.sock", env=dict(os.environ))
    reset_store()
    port = free_port()
    llm = start_llm_server(port=port, log=var / "llm.log")
    base_url = f"http://127.0.0.1:{port}/v1"
    settings.LOCAL_LLM_BASE_URL = base_url
    return store_proc, llm, base_url


def demo_reader(prefix: str):  # noqa: ANN201 - a Django user, imported after setup
    """An employee who reads one collection holding the demo documents, ingested here in
    this process (no worker consumes a benchmark's queue)."""
    import json
    import time
    import uuid

    from django.contrib.auth.models import Group, User
    from django.core.files import File

    from apps.core.roles import EMPLOYEE
    from apps.knowledge import ingestion, services
    from apps.ops.management.commands.seed_demo import DEMO_DIR

    group, _ = Group.objects.get_or_create(name=f"{prefix}-{int(time.time())}")
    collection = services.collection_create(
        name=group.name, actor=None, default_label="internal", groups=[group]
    )
    for entry in json.loads((DEMO_DIR / "manifest.json").read_text()):
        with (DEMO_DIR / entry["file"]).open("rb") as fh:
            doc, _ = services.document_create(
                collection=collection,
                upload=File(fh, name=entry["file"]),
                user=None,
                title=entry["title"],
            )
        ingestion.document_ingest(document_id=doc.pk)
    user = User.objects.create_user(f"{prefix}-{uuid.uuid4().hex[:8]}")
    user.groups.add(group, Group.objects.get(name=EMPLOYEE))
    return user
