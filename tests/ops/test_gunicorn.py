"""The production web server as the image runs it: gunicorn with docker/gunicorn.conf.py
(gthread, two worker processes, Prometheus multiprocess mode), static files collected with
the manifest and served by WhiteNoise, the container health check script against it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.llm import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - 127.0.0.1 only
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def web(enclave_env, tmp_path_factory):
    pytest.importorskip("gunicorn", reason="gunicorn comes with the prod extra (make install)")
    base = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {
        **enclave_env,
        "ENCLAVE_DEV": "false",
        "DEBUG": "false",
        "SECRET_KEY": "gunicorn-test-secret-key-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "enclave.test,localhost",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
        "STATIC_ROOT": str(base / "static"),
        "STATIC_MANIFEST": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(base / "prom"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    log = (base / "gunicorn.log").open("wb")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "--config", "docker/gunicorn.conf.py", "apps.config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    check = [sys.executable, "docker/healthcheck.py", "/healthz"]
    deadline = time.monotonic() + 60
    while subprocess.run(check, env=env, cwd=ROOT, capture_output=True).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("gunicorn did not start:\n" + (base / "gunicorn.log").read_text()[-3000:])
        time.sleep(0.3)
    yield {"url": f"http://127.0.0.1:{port}", "env": env, "static": base / "static"}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def test_the_container_health_check_passes_against_gunicorn(web):
    done = subprocess.run(
        [sys.executable, "docker/healthcheck.py", "/healthz"],
        env=web["env"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    # And fails, saying why, for a path that does not answer 200 over plain http.
    done = subprocess.run(
        [sys.executable, "docker/healthcheck.py", "/no-such-page"],
        env=web["env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "HTTP 301" in done.stderr  # the HTTPS redirect


def test_collected_static_files_are_served_hashed_and_cached_for_long(web):
    manifest = json.loads((web["static"] / "staticfiles.json").read_text())
    hashed = manifest["paths"]["js/chat.js"]
    assert hashed != "js/chat.js"
    status, headers, body = _get(
        f"{web['url']}/static/{hashed}", Host="enclave.test", **{"X-Forwarded-Proto": "https"}
    )
    assert status == 200 and body
    assert "immutable" in headers.get("Cache-Control", "")
    # The sign-in page links the hashed name (the manifest is what templates use).
    status, _, page = _get(
        f"{web['url']}/login/", Host="enclave.test", **{"X-Forwarded-Proto": "https"}
    )
    assert status == 200
    assert b"/static/" in page


def test_probes_answer_over_plain_http_and_metrics_in_multiprocess_mode(web):
    status, _, body = _get(f"{web['url']}/healthz", Host="enclave.test")
    assert (status, body) == (200, b"ok")
    status, _, body = _get(f"{web['url']}/metrics", Host="enclave.test")
    assert status == 200
    text = body.decode()
    assert "enclave_documents{" in text and "enclave_queue_depth{" in text
    # Each worker process writes its counters to a file of its own: multiprocess mode is on,
    # and a scrape of any worker sums them.
    files = list(Path(web["env"]["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db"))
    assert files, "no per-process counter files"
    assert "enclave_questions_total" in text


def _threads_of(env: dict[str, str]) -> int:
    """The thread count gunicorn itself reads from docker/gunicorn.conf.py under env."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    printed = subprocess.run(
        [gunicorn, "--config", "docker/gunicorn.conf.py", "--print-config", "apps.config.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    (line,) = [row for row in printed.splitlines() if row.split("=")[0].strip() == "threads"]
    return int(line.split("=")[1])


def test_each_worker_has_a_thread_for_every_request_the_model_queue_may_hold(enclave_env):
    """A gthread worker queues connections beyond its threads inside itself, so one worker
    must be able to hold the whole model queue and still answer quick requests."""
    pytest.importorskip("gunicorn", reason="gunicorn comes with the prod extra (make install)")
    base = {k: v for k, v in enclave_env.items() if k != "GUNICORN_THREADS"}
    queue = {"LOCAL_LLM_SLOTS": "3", "MODEL_QUEUE_MAX_LENGTH": "40"}
    assert _threads_of(base | queue) == 3 + 40 + 12
    assert _threads_of(base | {"LOCAL_LLM_SLOTS": "1", "MODEL_QUEUE_MAX_LENGTH": "0"}) == 16
    # An explicit count is kept; 0 (compose's default) and an empty value follow the rule.
    assert _threads_of(base | queue | {"GUNICORN_THREADS": "7"}) == 7
    assert _threads_of(base | queue | {"GUNICORN_THREADS": "0"}) == 55
    assert _threads_of(base | queue | {"GUNICORN_THREADS": ""}) == 55
