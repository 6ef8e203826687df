"""Is the local model local? LOCAL_LLM_BASE_URL's host, resolved, and which of its
addresses are public (they route on the internet: `ipaddress.is_global`; private,
loopback, link-local and shared ranges are not).

Every passage, confidential ones included, goes to the local model: one on a public
address may be a server outside the company. Enclave does not refuse it (a company may
run its model in its own cloud), but says so loudly: a WARNING when each process starts
(RoutingConfig.ready), the model register's card, and /readyz.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

PUBLIC_WARNING = (
    "LOCAL_LLM_BASE_URL resolves to a public address: the local model may not run on the "
    "company's premises, and every passage, confidential ones included, is sent to it."
)


@dataclass(frozen=True)
class Locality:
    host: str
    addresses: tuple[str, ...]
    public: tuple[str, ...]  # the addresses among them that route on the internet
    error: str = ""  # why the host could not be resolved

    @property
    def is_public(self) -> bool:
        return bool(self.public)

    @property
    def warning(self) -> str:
        if not self.public:
            return ""
        return f"{PUBLIC_WARNING} ({self.host}: {', '.join(self.public)})"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("%eth0") goes
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


@lru_cache(maxsize=32)
def _resolve(host: str) -> tuple[tuple[str, ...], str]:
    """(addresses, error). Once per host and process: the answer is what start-up saw."""
    try:
        return (str(ipaddress.ip_address(host)),), ""
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as err:
        return (), f"{host} does not resolve ({type(err).__name__})"
    return tuple(sorted({str(info[4][0]) for info in infos})), ""


def local_model_locality(url: str | None = None) -> Locality:
    """Where LOCAL_LLM_BASE_URL (or `url`) points. No connection is made."""
    host = urlsplit(settings.LOCAL_LLM_BASE_URL if url is None else url).hostname or ""
    if not host:
        return Locality(host="", addresses=(), public=(), error="the URL names no host")
    addresses, error = _resolve(host)
    return Locality(host, addresses, tuple(a for a in addresses if _is_public(a)), error)


def warn_if_public() -> Locality:
    locality = local_model_locality()
    if locality.is_public:
        logger.warning("%s", locality.warning)
    return locality


def check_at_start() -> None:
    """The start-up warning. A literal address is judged at once; a name is resolved on a
    thread of its own, so a slow resolver never delays a process's start."""
    host = urlsplit(settings.LOCAL_LLM_BASE_URL).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        threading.Thread(target=warn_if_public, name="local-model-locality", daemon=True).start()
    else:
        warn_if_public()
