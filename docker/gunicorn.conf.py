"""gunicorn settings for the web container (docker/Dockerfile's CMD).

gthread: each worker process serves GUNICORN_THREADS requests at once, so a streamed
answer (tens of seconds) holds one thread, not a process; the worker's heartbeat runs in
its main loop, so `timeout` does not cut long streams. Size: GUNICORN_WORKERS ~ cores,
GUNICORN_THREADS ~ concurrent streams per process (README "Capacity").

A gthread worker accepts connections beyond its threads (up to worker_connections) and
queues them inside itself, unread, even while another worker is idle. So each worker must
have a thread for every stream that may be waiting for the model, all of which can land on
one worker, plus room for the quick requests beside them (pages, sign-ins, "busy"
refusals): by default LOCAL_LLM_SLOTS + MODEL_QUEUE_MAX_LENGTH + 12, at least 16.
"""

import os
import shutil
from pathlib import Path

from apps.config.local_model import LOCAL_LLM_SLOTS, MODEL_QUEUE_MAX_LENGTH

# Threads per worker beyond the streams that may hold one while they wait or answer.
QUICK_REQUEST_THREADS = 12

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('WEB_PORT', '8000')}")
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS") or "0") or max(
    16, LOCAL_LLM_SLOTS + MODEL_QUEUE_MAX_LENGTH + QUICK_REQUEST_THREADS
)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "60"))
keepalive = 5
# Recycle workers now and then (memory fragmentation), staggered so they never all go at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
# The request head is capped here (README "Security"); bodies are capped by Django before
# they are read (UPLOAD_MAX_BYTES, UPLOAD_REQUEST_MAX_BYTES, FORM_MAX_BYTES).
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "4094"))
limit_request_fields = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELDS", "100"))
limit_request_field_size = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", "8190"))
accesslog = "-"
errorlog = "-"
# The proxy in front sets X-Forwarded-*; only trust it from the addresses listed here.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Prometheus multiprocess mode: every worker writes its counters under this folder;
    it must start empty, or counters of a previous run would be summed in."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
