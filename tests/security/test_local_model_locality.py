"""Attack: the "local" model is somewhere else (issue 15, item 10). LOCAL_LLM_BASE_URL
pointing at a public address sends every passage, confidential ones included, off the
premises; Enclave must say so at start, in the model register and in /readyz.

Nothing here connects to a public address: the server runs with HTTP_PROXY set to a
stand-in on 127.0.0.1, which answers the readiness probe's GET and records it.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.test import Client

from apps.core.roles import COMPLIANCE_OFFICER
from apps.routing.locality import PUBLIC_WARNING, local_model_locality
from tests.accounts.conftest import make_user
from tests.support.live_web import LiveWeb, get, start_web, stop_web

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "http://8.8.8.8:1/v1"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        (PUBLIC_URL, True),
        ("http://[2001:4860:4860::8888]:8000/v1", True),
        ("http://[::ffff:8.8.8.8]:8000/v1", True),  # IPv4 inside IPv6 is still public
        ("http://127.0.0.1:8765/v1", False),
        ("http://10.20.30.40:8000/v1", False),
        ("http://172.16.0.9:8000/v1", False),
        ("http://192.168.1.5:8000/v1", False),
        ("http://169.254.0.7:8000/v1", False),  # link-local
        ("http://[::1]:8000/v1", False),
        ("http://[fe80::1]:8000/v1", False),
        ("http://localhost:8765/v1", False),  # a name that resolves to loopback
    ],
)
def test_a_public_address_is_told_from_a_private_one(url, public):
    locality = local_model_locality(url)
    assert locality.is_public is public, locality
    assert bool(locality.warning) is public
    if public:
        assert PUBLIC_WARNING in locality.warning and locality.host in locality.warning


def test_a_name_resolves_to_its_addresses():
    locality = local_model_locality("http://localhost:8765/v1")
    assert "127.0.0.1" in locality.addresses and not locality.error


def _start(env: dict[str, str], url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "LOCAL_LLM_BASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_process_starting_with_a_public_local_model_warns_in_its_log(enclave_env):
    done = _start(enclave_env, PUBLIC_URL)
    assert done.returncode == 0, done.stderr
    assert "WARNING apps.routing.locality" in done.stderr
    assert PUBLIC_WARNING in done.stderr and "8.8.8.8" in done.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/v1", "http://10.0.0.5:8000/v1"])
def test_a_process_starting_with_a_private_local_model_does_not(enclave_env, url):
    done = _start(enclave_env, url)
    assert done.returncode == 0, done.stderr
    assert PUBLIC_WARNING not in done.stderr


class _StandIn(BaseHTTPRequestHandler):
    """The proxy the server's HTTP client is told to use: answers /models, records all."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.path)
        body = json.dumps({"object": "list", "data": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def web(enclave_env, stand_in, tmp_path_factory) -> Iterator[LiveWeb]:
    pytest.importorskip("gunicorn", reason="gunicorn comes with the prod extra")
    env = {
        **{k: v for k, v in enclave_env.items() if k.lower() not in ("no_proxy", "all_proxy")},
        "LOCAL_LLM_BASE_URL": PUBLIC_URL,
        "HTTP_PROXY": stand_in,
        "CACHE_KEY_PREFIX": f"enclave-test-{secrets.token_hex(6)}",
    }
    server = start_web("gunicorn", env=env, log=tmp_path_factory.mktemp("locality") / "web.log")
    yield server
    stop_web(server)


@pytest.mark.django_db(transaction=True)
def test_a_public_local_model_is_shown_in_readyz_and_in_the_model_register(web):
    log = web.log.read_text()
    assert "WARNING apps.routing.locality" in log and "8.8.8.8" in log

    _StandIn.seen.clear()
    answer = get(web, "/readyz")
    body = json.loads(answer.body)
    assert body["checks"]["local_model"]["location"] == {
        "public": True,
        "warning": PUBLIC_WARNING,
    }
    assert body["warnings"] == [PUBLIC_WARNING]
    # The probe went to the stand-in, never to the public address itself.
    assert _StandIn.seen == ["http://8.8.8.8:1/v1/models"]
    assert body["checks"]["local_model"]["status"] == "up"

    officer = make_user("olivia", COMPLIANCE_OFFICER)
    client = Client()
    client.force_login(officer)
    page = get(web, "/audit/models/", cookies={"sessionid": client.cookies["sessionid"].value})
    assert page.status == 200
    [card] = [s for s in page.text().split("<section") if "answers (default)" in s]
    assert "a public address: 8.8.8.8" in card and "on the premises</span>" not in card
    assert PUBLIC_WARNING.split(":")[0] in card
