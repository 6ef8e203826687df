"""Where seals (and SIEM lines) go outside PostgreSQL.

The seal store is append-only by construction: a file opened with O_APPEND, one JSON line
per seal, fsynced before the seal counts as made; or a directory where each seal is its own
file created with O_EXCL, so none is ever overwritten. On WORM storage (S3 Object Lock, a
chattr +a file, a write-once share) nobody can take a seal back. Syslog and an HTTP
endpoint are optional copies for a log collector or a notary service.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

SEAL_FILE_PREFIX = "seal-"


class SinkError(Exception):
    """A sink refused or could not take a line; the message names the sink."""


def seal_store_path() -> Path:
    configured = settings.AUDIT_SEAL_PATH
    if configured:
        return Path(configured)
    return Path(settings.VAR_DIR) / "audit" / "seals.jsonl"


def is_directory_store(path: Path) -> bool:
    return str(settings.AUDIT_SEAL_PATH or "").endswith("/") or path.is_dir()


def append_line(path: Path, line: str) -> None:
    """Append one line to a file, durably (written and fsynced before returning)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def store_seal(seq: int, line: str) -> str:
    """Write a seal to the store; returns where it went."""
    path = seal_store_path()
    if is_directory_store(path):
        path.mkdir(parents=True, exist_ok=True)
        target = path / f"{SEAL_FILE_PREFIX}{seq:012d}.json"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
        except FileExistsError as err:
            raise SinkError(f"{target} exists already: seals are never overwritten") from err
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return str(target)
    append_line(path, line)
    return str(path)


def stored_seal_lines() -> Iterator[str]:
    """Every seal line in the store, oldest first (none when there is no store yet), read
    as they come: a year of seals is not held in memory at once."""
    path = seal_store_path()
    if is_directory_store(path):
        if path.exists():
            files = sorted(p for p in path.iterdir() if p.name.startswith(SEAL_FILE_PREFIX))
            for file in files:
                yield file.read_text().strip()
        return
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield line.strip()


def last_seal_line() -> str:
    """The newest seal line ("" when there is none), without reading the whole store."""
    path = seal_store_path()
    if is_directory_store(path):
        if not path.exists():
            return ""
        names = [p.name for p in path.iterdir() if p.name.startswith(SEAL_FILE_PREFIX)]
        return (path / max(names)).read_text().strip() if names else ""
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        block, position = b"", end
        while position > 0 and len(block.strip().splitlines()) < 2:
            position = max(0, position - 65536)
            handle.seek(position)
            block = handle.read(end - position)
    lines = block.strip().splitlines()
    return lines[-1].decode() if lines else ""


class SyslogSender:
    """Messages to syslog (RFC 3164 framing, facility auth, severity info): "host:port" over
    UDP, or a local datagram socket such as /dev/log. One socket for many messages."""

    PRIORITY = 4 * 8 + 6

    def __init__(self, address: str, *, tag: str) -> None:
        self.address, self.tag = address, tag
        try:
            if address.startswith("/"):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.settimeout(2)
                self.sock.connect(address)
            else:
                host, port = address.rsplit(":", 1)
                family, kind, proto, _, where = socket.getaddrinfo(
                    host, int(port), type=socket.SOCK_DGRAM
                )[0]
                self.sock = socket.socket(family, kind, proto)
                self.sock.settimeout(2)
                self.sock.connect(where)
        except OSError as err:
            raise SinkError(f"syslog {address}: {err}") from err

    def send(self, message: str) -> None:
        try:
            self.sock.send(f"<{self.PRIORITY}>{self.tag}: {message}".encode())
        except OSError as err:
            raise SinkError(f"syslog {self.address}: {err}") from err

    def close(self) -> None:
        self.sock.close()


def syslog_send(address: str, message: str, *, tag: str) -> None:
    sender = SyslogSender(address, tag=tag)
    try:
        sender.send(message)
    finally:
        sender.close()


def http_post(url: str, line: str, *, timeout: float = 5.0) -> None:
    """POST one JSON document; anything but a 2xx answer is a SinkError."""
    if not url.startswith(("http://", "https://")):
        raise SinkError(f"{url}: only http:// and https:// endpoints are accepted")
    json.loads(line)  # only ever a JSON document
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=line.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            status = response.status
    except OSError as err:
        raise SinkError(f"HTTP {url}: {err}") from err
    if not 200 <= status < 300:
        raise SinkError(f"HTTP {url} answered {status}")
