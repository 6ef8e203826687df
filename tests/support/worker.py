"""A real Celery worker process for tests, consuming from the real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    *,
    env: dict[str, str],
    log: Path,
    name: str = "test-worker",
    timeout: float = 90,
    concurrency: int = 1,
    include: Sequence[str] = (),
) -> subprocess.Popen:
    """`include`: more modules the worker imports before it forks (celery's --include),
    such as tests.support.ingest_pause."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery",
        "worker",
        "-Q",
        "ingest,default",
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    if include:
        cmd += ["--include", ",".join(include)]
    fh = log.open("ab")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"celery worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        if " ready." in log.read_text(errors="replace"):
            return proc
        time.sleep(0.2)
    kill_worker(proc)
    raise RuntimeError(f"celery worker not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def kill_worker(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the whole process group: the main process and its prefork children."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    if sig == signal.SIGKILL:
        # The prefork children are in the same group; make sure none is left behind.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
