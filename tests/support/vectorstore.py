"""The real `manage.py vectorstore` owner as a child process, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY = "vectorstore ready on "


def _log_tail(proc: subprocess.Popen, limit: int = 4000) -> str:
    path = getattr(proc, "log_path", None)
    if path is None:
        return "(no log)"
    try:
        return Path(path).read_text(errors="replace")[-limit:]
    except OSError as err:
        return f"(log unreadable: {err})"


def start_vectorstore(
    data_dir: Path, socket: Path, env: dict | None = None, *, timeout: float = 60
) -> subprocess.Popen:
    """Start an owner on `data_dir`/`socket` and return once it accepts connections.

    stdout and stderr go to a log file (`proc.log_path`), so a chatty owner can never
    block on a full pipe; on failure the error quotes its tail.
    """
    child_env = {**(env if env is not None else os.environ)}
    child_env.update(
        VECTOR_DATA_DIR=str(data_dir),
        VECTOR_SOCKET=str(socket),
        PYTHONUNBUFFERED="1",
    )
    # An inherited QDRANT_URL would make the command refuse: the owner is embedded-only.
    child_env.pop("QDRANT_URL", None)
    fd, log_path = tempfile.mkstemp(prefix="vectorstore-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "vectorstore"],
            cwd=ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if READY in Path(log_path).read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            # The tail goes into the error, so the log file itself is not needed.
            tail = _log_tail(proc)
            Path(log_path).unlink(missing_ok=True)
            raise RuntimeError(
                f"manage.py vectorstore exited with code {proc.returncode} before it was "
                f"ready:\n{tail}"
            )
        time.sleep(0.05)
    tail = _log_tail(proc)
    stop_vectorstore(proc, sig=signal.SIGKILL)
    raise RuntimeError(f"manage.py vectorstore not ready after {timeout} s:\n{tail}")


def stop_vectorstore(
    proc: subprocess.Popen, sig: int = signal.SIGTERM, *, timeout: float = 30
) -> int | None:
    """Signal the owner and wait for it; SIGKILL if it does not stop in `timeout`."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    # A clean exit, or the SIGKILL we sent, leaves nothing worth reading; any other exit
    # keeps its log at proc.log_path for whoever investigates.
    expected = {0, -signal.SIGKILL} if sig == signal.SIGKILL else {0}
    if proc.returncode in expected and getattr(proc, "log_path", None):
        Path(proc.log_path).unlink(missing_ok=True)
    return proc.returncode
