"""Attack: a body too large to hold (issue 15, item 1).

An anonymous client that sets its own csrftoken cookie POSTs a 200 MB form to /login/;
a knowledge admin uploads more than an upload may carry, and a file over
UPLOAD_MAX_BYTES among good ones. Against real server processes (gunicorn with the
shipped config, and runserver as `make run` starts it) over real sockets: the answer comes
while the client is still sending, and the serving process does not grow.
"""

from __future__ import annotations

import json
import runpy
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from apps.core.roles import KNOWLEDGE_ADMIN
from apps.knowledge.models import Collection, Document
from tests.accounts.conftest import make_user
from tests.ops.test_compose import DUMMY, _compose_missing, _config
from tests.support.live_web import (
    LiveWeb,
    form_encode,
    get,
    post_streaming,
    repeated,
    rss_kib,
    start_web,
    stop_web,
)

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]

MB = 1024 * 1024
ATTACK_BYTES = 200 * MB
# "A few MB": what a request and its answer may leave behind in the serving process.
RSS_GROWTH_KIB = 5 * 1024
# Caps the servers below run with: small, so a file over them costs the test little.
UPLOAD_MAX = 1 * MB
UPLOAD_REQUEST_MAX = 8 * MB


@pytest.fixture(scope="module", params=["gunicorn", "runserver"])
def web(request, enclave_env, tmp_path_factory) -> Iterator[LiveWeb]:
    if request.param == "gunicorn":
        pytest.importorskip("gunicorn", reason="gunicorn comes with the prod extra")
    log = tmp_path_factory.mktemp(request.param) / "web.log"
    env = {
        **enclave_env,
        "DEBUG": "false",
        "UPLOAD_MAX_BYTES": str(UPLOAD_MAX),
        "UPLOAD_REQUEST_MAX_BYTES": str(UPLOAD_REQUEST_MAX),
        # The warm-up signs in badly on purpose; those counters are this server's own.
        "CACHE_KEY_PREFIX": f"enclave-test-{secrets.token_hex(6)}",
        "LOGIN_FAILURE_LIMIT": "1000",
    }
    server = start_web(request.param, env=env, log=log)
    yield server
    stop_web(server)


def _csrf() -> str:
    # What any client may do: make up a token and send it as both cookie and field.
    return secrets.token_hex(16)


def _warm(web: LiveWeb) -> int:
    """Serve a page and a small form first, so what was loaded lazily is in; the RSS then."""
    token = _csrf()
    for _ in range(3):
        assert get(web, "/login/").status == 200
        body = form_encode({"csrfmiddlewaretoken": token, "username": "x", "password": "y"})
        answer = post_streaming(
            web,
            "/login/",
            length=len(body),
            body=[body],
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            cookies={"csrftoken": token},
        )
        assert answer.status == 200
    return rss_kib(web.serving_pid())


def test_a_200_mb_form_to_login_is_refused_while_it_arrives_and_nothing_grows(web):
    before = _warm(web)
    token = _csrf()
    prefix = f"csrfmiddlewaretoken={token}&username=".encode()
    answer = post_streaming(
        web,
        "/login/",
        length=ATTACK_BYTES,
        body=repeated(ATTACK_BYTES, prefix=prefix),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        cookies={"csrftoken": token},
    )
    assert answer.status in (400, 413), answer.text()
    assert "the limit is 2.5 MB" in answer.text()
    # Answered before the body was sent: at most what socket buffers took meanwhile.
    assert answer.sent < ATTACK_BYTES // 10, answer.sent
    assert answer.seconds < 1.0, answer.seconds
    grown = rss_kib(web.serving_pid()) - before
    assert grown <= RSS_GROWTH_KIB, f"{web.kind} grew by {grown} KiB"
    # The server still serves.
    assert get(web, "/login/").status == 200


def _admin_cookies() -> dict[str, str]:
    admin = make_user("kim", KNOWLEDGE_ADMIN)
    client = Client()
    client.force_login(admin)
    return {"sessionid": client.cookies["sessionid"].value}


BOUNDARY = "enclave-security-test-boundary"


def _multipart(
    fields: dict[str, str], files: list[tuple[str, int, bytes]]
) -> tuple[int, Iterator[bytes]]:
    """A multipart body (its length, its pieces): `files` are (name, size, first bytes),
    the rest of each file generated as it is sent."""
    parts: list[tuple[bytes, int, bytes]] = []  # (head, size of generated content, start)
    for name, value in fields.items():
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
        parts.append((head, 0, b""))
    for filename, size, start in files:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        parts.append((head, size, start))
    tail = f"--{BOUNDARY}--\r\n".encode()
    length = sum(len(h) + size + (2 if size else 0) for h, size, _ in parts) + len(tail)

    def pieces() -> Iterator[bytes]:
        for head, size, start in parts:
            yield head
            if size:
                yield from repeated(size, prefix=start, fill=b"z")
                yield b"\r\n"
        yield tail

    return length, pieces()


def _upload(web, collection, files, *, token: str, cookies: dict):  # noqa: ANN001, ANN202
    """Stream a multipart upload of `files` ((name, size, head) each) to the live server."""
    length, body = _multipart({"collection": str(collection.pk)}, files)
    return post_streaming(
        web,
        "/knowledge/upload/",
        length=length,
        body=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Accept": "application/json",
            "X-CSRFToken": token,
        },
        cookies=cookies,
    )


def test_an_upload_over_the_request_cap_is_refused_with_413_while_it_arrives(web):
    collection = Collection.objects.create(name="Handbook")
    cookies = {**_admin_cookies(), "csrftoken": (token := _csrf())}
    before = _warm(web)
    answer = _upload(
        web, collection, [("huge.pdf", ATTACK_BYTES, b"%PDF-1.7\n")], token=token, cookies=cookies
    )
    assert answer.status == 413, answer.text()
    error = json.loads(answer.body)["error"]
    assert "one upload may carry 8 MB in all" in error and "Nothing was stored" in error
    assert answer.sent < ATTACK_BYTES // 10, answer.sent
    assert answer.seconds < 1.0, answer.seconds
    grown = rss_kib(web.serving_pid()) - before
    assert grown <= RSS_GROWTH_KIB, f"{web.kind} grew by {grown} KiB"
    assert not Document.objects.exists()


def test_a_file_over_the_cap_is_dropped_as_it_streams_and_the_others_are_kept(web, enclave_var):
    collection = Collection.objects.create(name="Handbook")
    cookies = {**_admin_cookies(), "csrftoken": (token := _csrf())}
    before = _warm(web)
    big = 6 * MB  # over UPLOAD_MAX, under the request cap: refused file by file
    note = b"# Notes\n\nThe badge office opens at nine.\n"
    files = [("big.pdf", big, b"%PDF-1.7\n"), ("notes.md", len(note), note)]
    answer = _upload(web, collection, files, token=token, cookies=cookies)
    assert answer.status == 200, answer.text()
    refused, kept = json.loads(answer.body)["results"]
    assert refused["name"] == "big.pdf" and refused["ok"] is False
    assert "the limit is 1 MB" in refused["message"]
    assert kept["name"] == "notes.md" and kept["ok"] is True
    assert [d.original_name for d in Document.objects.all()] == ["notes.md"]
    stored = [p for p in Path(enclave_var, "media").rglob("*") if p.is_file()]
    assert all(p.stat().st_size < UPLOAD_MAX for p in stored), stored
    grown = rss_kib(web.serving_pid()) - before
    assert grown <= RSS_GROWTH_KIB, f"{web.kind} grew by {grown} KiB"


def test_the_shipped_configuration_caps_heads_and_bodies():
    """What the image runs: gunicorn caps the request head, compose passes every body cap."""
    gunicorn = runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py"))
    assert gunicorn["limit_request_line"] == 4094
    assert gunicorn["limit_request_fields"] == 100
    assert gunicorn["limit_request_field_size"] == 8190
    missing = _compose_missing()
    if missing:
        pytest.skip(missing)
    done = _config(DUMMY)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    for name in ("web", "worker-ingest"):
        env = services[name]["environment"]
        assert env["UPLOAD_MAX_BYTES"] == "52428800"
        assert env["UPLOAD_REQUEST_MAX_BYTES"] == "524288000"
        assert env["FORM_MAX_BYTES"] == "2621440"
    assert services["web"]["environment"]["GUNICORN_LIMIT_REQUEST_LINE"] == "4094"
