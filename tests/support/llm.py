"""A real llama.cpp OpenAI-compatible server with the packaged SmolLM2 model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL_ALIAS = "SmolLM2-135M-Instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llm_server(
    *, port: int, log: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.Popen:
    from apps.assistant.tokens import local_gguf_path

    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", local_gguf_path(),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "4096",
        "--n_threads", str(max(1, (os.cpu_count() or 2))),
    ]  # fmt: skip
    fh = log.open("ab")
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env or os.environ.copy(),
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_path = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}/v1/models"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"llama.cpp server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - localhost
                if MODEL_ALIAS in json.dumps(json.load(resp)):
                    return proc
        except OSError:
            pass
        time.sleep(0.25)
    stop_llm_server(proc, sig=signal.SIGKILL)
    raise RuntimeError(f"llama.cpp server not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop_llm_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
