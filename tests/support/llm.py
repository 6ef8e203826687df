"""A real llama.cpp OpenAI-compatible server with the packaged SmolLM2 model, and a
recording proxy to put in front of it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from apps.routing.local_server import stop_server
from apps.routing.tokens import local_gguf_path

ROOT = Path(__file__).resolve().parents[2]
MODEL_ALIAS = "SmolLM2-135M-Instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llm_server(
    *, port: int, log: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.Popen:
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
    stop_server(proc, sig)


class RecordingProxy:
    """A tiny HTTP proxy on 127.0.0.1 in front of a model server: it keeps the exact body
    bytes of every request it passes on and streams each answer back as it comes.

        with RecordingProxy(upstream=live_llm["base_url"]) as proxy:
            settings.LOCAL_LLM_BASE_URL = proxy.base_url
            ...
        assert proxy.bodies == [b'{"messages": ...}']
    """

    def __init__(self, *, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.path_prefix = parts.path.rstrip("/")
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        handler = type("_Handler", (_ProxyHandler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path_prefix}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, body: bytes) -> None:
        with self._lock:
            self.bodies.append(body)


# Hop-by-hop headers: each side of the proxy sets its own.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: RecordingProxy
    # HTTP/1.0: the answer ends when this side closes, so a stream passes as it comes.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet test output

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.proxy.record(body)
        upstream = http.client.HTTPConnection(
            self.proxy.upstream_host, self.proxy.upstream_port, timeout=120
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request("POST", self.path, body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.end_headers()
            while chunk := response.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
        finally:
            upstream.close()
