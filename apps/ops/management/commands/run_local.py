"""Run Enclave on one machine: vector store owner, model server, Celery worker, web.

Each part is a real process with its log under var/log/. The command waits until every
part answers, prints the URL and the demo logins, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.routing.tokens import local_gguf_path

PIDFILE_NAME = "run_local.pids"


def _port_of(url: str, default: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default


def _http_ok(url: str) -> bool:
    try:
        # Our own localhost URL, built from settings (http only).
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310  # nosec B310
            return 200 <= resp.status < 500
    except OSError:
        return False


class Command(BaseCommand):
    help = "Start the vector store, model server, Celery worker and web server (Ctrl-C stops)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--stop", action="store_true", help="stop a running set and exit")
        parser.add_argument("--no-llm", action="store_true", help="do not start the model server")

    def handle(self, *args: object, **options: object) -> None:
        log_dir = settings.VAR_DIR / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile = settings.VAR_DIR / PIDFILE_NAME
        if options["stop"]:
            self._stop_recorded()
            return
        self._stop_recorded(quiet=True)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        py = sys.executable
        self.procs: list[tuple[str, subprocess.Popen]] = []

        def start(name: str, cmd: list[str]) -> None:
            log = (log_dir / f"{name}.log").open("ab")
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=settings.BASE_DIR,
                start_new_session=True,
            )
            self.procs.append((name, proc))
            self.pidfile.write_text("\n".join(f"{n} {p.pid}" for n, p in self.procs))

        try:
            start("vectorstore", [py, "manage.py", "vectorstore"])
            if not options["no_llm"]:
                host, port = _port_of(settings.LOCAL_LLM_BASE_URL, 8765)
                start(
                    "llm",
                    [
                        py,
                        "-m",
                        "llama_cpp.server",
                        "--model",
                        local_gguf_path(),
                        "--model_alias",
                        settings.LOCAL_LLM_MODEL,
                        "--host",
                        host,
                        "--port",
                        str(port),
                        "--n_ctx",
                        str(settings.LOCAL_LLM_CONTEXT),
                    ],
                )
            start(
                "worker",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "workers.celery",
                    "worker",
                    "-B",
                    "-Q",
                    "ingest,default",
                    "-c",
                    str(settings.CELERY_WORKER_CONCURRENCY),
                    "-n",
                    "enclave@%h",
                    "--loglevel",
                    "INFO",
                    "-s",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                ],
            )
            start(
                "web",
                [
                    py,
                    "manage.py",
                    "runserver",
                    "--noreload",
                    "--insecure",
                    f"{settings.WEB_HOST}:{settings.WEB_PORT}",
                ],
            )
            self._wait_ready(no_llm=bool(options["no_llm"]))
            self._banner()
            self._supervise()
        finally:
            self._stop_all()

    def _wait_ready(self, *, no_llm: bool) -> None:
        web = f"http://{settings.WEB_HOST}:{settings.WEB_PORT}/login/"
        checks = {
            "vectorstore": lambda: settings.VECTOR_SOCKET.exists() and self._socket_ok(),
            "web": lambda: _http_ok(web),
        }
        if not no_llm:
            checks["llm"] = lambda: _http_ok(settings.LOCAL_LLM_BASE_URL.rstrip("/") + "/models")
        deadline = time.monotonic() + 180
        pending = dict(checks)
        while pending and time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise CommandError(
                        f"{name} exited with code {proc.returncode}; see var/log/{name}.log"
                    )
            for name in list(pending):
                if pending[name]():
                    self.stdout.write(f"  {name} is up")
                    del pending[name]
            time.sleep(0.5)
        if pending:
            raise CommandError(f"not ready after 180 s: {', '.join(pending)} (see var/log/)")

    def _socket_ok(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(str(settings.VECTOR_SOCKET))
            return True
        except OSError:
            return False

    def _banner(self) -> None:
        url = f"http://{settings.WEB_HOST}:{settings.WEB_PORT}/"
        pw = settings.DEMO_PASSWORD
        self.stdout.write(self.style.SUCCESS(f"\nEnclave is running at {url}\n"))
        self.stdout.write("Demo logins (password for all: " + pw + "):")
        self.stdout.write("  employee    an employee (reads the Company handbook)")
        self.stdout.write(
            "  fiona       an employee in Finance (also reads Finance — confidential)"
        )
        self.stdout.write("  admin       a knowledge admin (uploads documents)")
        self.stdout.write("  compliance  a compliance officer (reads the audit trail)")
        self.stdout.write("Logs: var/log/. Ctrl-C stops everything.\n")

    def _supervise(self) -> None:
        stop = {"now": False}

        def on_signal(signum: int, frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not stop["now"]:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    self.stderr.write(
                        f"{name} stopped (code {proc.returncode}); see var/log/{name}.log"
                    )
                    return
            time.sleep(1)

    def _stop_all(self) -> None:
        for _name, proc in reversed(getattr(self, "procs", [])):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in getattr(self, "procs", []):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if getattr(self, "procs", None):
            self.pidfile.unlink(missing_ok=True)
            self.stdout.write("stopped")

    def _stop_recorded(self, quiet: bool = False) -> None:
        """Stop a set left running by an earlier `make run` (its pids are recorded)."""
        if not self.pidfile.exists():
            if not quiet:
                self.stdout.write("nothing recorded as running")
            return
        for line in self.pidfile.read_text().split("\n"):
            name, _, pid = line.partition(" ")
            if pid.isdigit():
                try:
                    os.killpg(int(pid), signal.SIGTERM)
                    self.stdout.write(f"stopped {name} ({pid})")
                except ProcessLookupError:
                    pass
        self.pidfile.unlink(missing_ok=True)
        time.sleep(1)
