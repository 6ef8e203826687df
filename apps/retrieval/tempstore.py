"""A throw-away `manage.py vectorstore` owner on a temporary folder.

For evaluate_retrieval and bench/retrieval.py: they fill a store with data nobody else
should see, so they start their own owner on a fresh VECTOR_DATA_DIR and socket, point
this process's settings at it, and remove everything when done. The production owner
and its data are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from apps.retrieval.store import reset_store

ROOT = Path(__file__).resolve().parents[2]
READY = "vectorstore ready on "


@contextmanager
def temporary_owner(*, timeout: float = 60) -> Iterator[Path]:
    """Start an owner on a temp folder, switch settings.VECTOR_* to it, yield the folder."""
    base = Path(tempfile.mkdtemp(prefix="enclave-vs-"))
    data_dir, sock, log_path = base / "data", base / "vs.sock", base / "owner.log"
    env = {**os.environ, "VECTOR_DATA_DIR": str(data_dir), "VECTOR_SOCKET": str(sock)}
    env.pop("QDRANT_URL", None)  # the owner is embedded-only
    env.setdefault("PYTHONUNBUFFERED", "1")
    saved = (settings.QDRANT_URL, settings.VECTOR_DATA_DIR, settings.VECTOR_SOCKET)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own manage.py, no shell
            [sys.executable, str(ROOT / "manage.py"), "vectorstore"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while READY not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"temporary vectorstore did not start:\n{tail}")
            time.sleep(0.05)
        settings.QDRANT_URL = ""
        settings.VECTOR_DATA_DIR = data_dir
        settings.VECTOR_SOCKET = sock
        reset_store()
        yield data_dir
    finally:
        reset_store()
        settings.QDRANT_URL, settings.VECTOR_DATA_DIR, settings.VECTOR_SOCKET = saved
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
