"""Enclave's web server as a real process (gunicorn with docker/gunicorn.conf.py, or
`manage.py runserver` as `make run` starts it), and a raw HTTP client that can stream a
body it never holds and stop sending as soon as the server answers."""

from __future__ import annotations

import http.client
import select
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.llm import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveWeb:
    kind: str  # "gunicorn" or "runserver"
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serving_pid(self) -> int:
        """The process that runs Django: gunicorn's one worker, or runserver itself."""
        if self.kind == "runserver":
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        pids = [int(p) for p in children.split()]
        assert len(pids) == 1, f"expected one gunicorn worker, found {pids}"
        return pids[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def start_web(
    kind: str, *, env: dict[str, str], log: Path, timeout: float = 90, workers: int = 1
) -> LiveWeb:
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    if kind == "gunicorn":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        cmd = [str(gunicorn), "--config", "docker/gunicorn.conf.py", "apps.config.wsgi"]
    else:
        cmd = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    web = LiveWeb(kind, port, proc, log)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if get(web, "/healthz").status == 200:
                return web
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_web(web)
            raise RuntimeError(f"{kind} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_web(web: LiveWeb) -> None:
    if web.proc.poll() is None:
        web.proc.terminate()
        try:
            web.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            web.proc.kill()
            web.proc.wait(timeout=10)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int = 0  # body bytes the client had sent when the answer came
    seconds: float = 0.0  # from the first byte of the request to the answer's status line
    cookies: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def get(web: LiveWeb, path: str, *, cookies: dict[str, str] | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    try:
        headers = {"Cookie": _cookie_header(cookies)} if cookies else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def post_streaming(
    web: LiveWeb,
    path: str,
    *,
    length: int,
    body: Iterable[bytes],
    headers: dict[str, str],
    cookies: dict[str, str] | None = None,
) -> Answer:
    """POST `length` bytes taken from `body` as they are needed, and stop sending the moment
    the server answers (or closes). The client never holds more than one piece."""
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=30)
    try:
        all_headers = {
            "Host": f"127.0.0.1:{web.port}",
            "Content-Length": str(length),
            **headers,
            **({"Cookie": _cookie_header(cookies)} if cookies else {}),
        }
        head = f"POST {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in all_headers.items()
        )
        started = time.monotonic()
        sock.sendall(head.encode("latin-1") + b"\r\n")
        sent = _send_until_answered(sock, body)
        raw = _read_answer(sock)
        seconds = time.monotonic() - started
    finally:
        sock.close()
    assert raw, f"the server closed the connection without an answer after {sent} bytes"
    status, headers_out, body_out = _parse(raw)
    return Answer(status, headers_out, body_out, sent=sent, seconds=seconds)


def _send_until_answered(sock: socket.socket, body: Iterable[bytes]) -> int:
    sent = 0
    for piece in body:
        view = memoryview(piece)
        while view:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                return sent  # an answer (or a close) came: stop sending
            if not writable:
                raise AssertionError("the server neither read nor answered for 30 s")
            try:
                n = sock.send(view[:65536])
            except (BrokenPipeError, ConnectionResetError):
                return sent
            sent += n
            view = view[n:]
    return sent


# An answer is read up to this much: enough for any refusal or result list, and a page
# that echoes a huge body back (a server without caps) does not fill the test's memory.
ANSWER_MAX_BYTES = 1024 * 1024


def _read_answer(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    raw = bytearray()
    while len(raw) < ANSWER_MAX_BYTES:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break  # the server closed with our unread body in its buffer; keep what came
        if not data:
            break
        raw += data
        if _complete(bytes(raw[:ANSWER_MAX_BYTES])):
            break
    return bytes(raw)


def _complete(raw: bytes) -> bool:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    lines = head.decode("latin-1").split("\r\n")
    fields = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    if "content-length" in fields:
        return len(rest) >= int(fields["content-length"])
    if fields.get("transfer-encoding", "").lower() == "chunked":
        return rest.endswith(b"0\r\n\r\n")
    return False  # read to the close


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return status, headers, rest


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def repeated(
    total: int, *, prefix: bytes = b"", fill: bytes = b"x", suffix: bytes = b""
) -> Iterator[bytes]:
    """`prefix`, then `fill` bytes, then `suffix`: `total` bytes in all, in 1 MiB pieces."""
    yield prefix
    left = total - len(prefix) - len(suffix)
    block = fill * (1024 * 1024 // len(fill))
    while left > 0:
        piece = block[: min(left, len(block))]
        left -= len(piece)
        yield piece
    yield suffix


def form_encode(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()
