"""Settings of the audit trail's proofs (README "Compliance"): the seal key and where seals
go, and the SIEM feed. Read here and imported by settings.py, which is at its line limit.

Paths left empty are resolved under VAR_DIR when used (apps/audit/seal_store.py,
apps/audit/siem.py), so a test or a second instance that moves VAR_DIR moves them too.
"""

from __future__ import annotations

import re

from apps.config.env import Env, require

env = Env()

# The Ed25519 private key (PEM, PKCS#8) that signs seals of the chain head and egress
# reports; the database never holds it. Empty: VAR_DIR/audit/seal.key, created on first
# use while ENCLAVE_DEV is true; in production point it at a key kept off the database host.
AUDIT_SEAL_KEY_FILE = env.str("AUDIT_SEAL_KEY_FILE", default="")
# The public key verifiers trust: a PEM file, or the raw key as 64 hex digits. Empty: the
# public half of AUDIT_SEAL_KEY_FILE. Set it where the verifier must not hold the private key.
AUDIT_SEAL_PUBLIC_KEY = env.str("AUDIT_SEAL_PUBLIC_KEY", default="")
# Where seals are appended: a file (one JSON line per seal) or, ending in "/", a directory
# (one file per seal, never overwritten). WORM storage in production. Empty:
# VAR_DIR/audit/seals.jsonl.
AUDIT_SEAL_PATH = env.str("AUDIT_SEAL_PATH", default="")
# Optional further sinks for every seal: syslog ("host:port" over UDP, or a socket path
# such as /dev/log) and an HTTP(S) endpoint that receives each seal as a JSON POST.
AUDIT_SEAL_SYSLOG = env.str("AUDIT_SEAL_SYSLOG", default="")
AUDIT_SEAL_HTTP_URL = env.http_url("AUDIT_SEAL_HTTP_URL")
# How often Celery beat seals the chain head.
AUDIT_SEAL_INTERVAL_SECONDS = env.integer(
    "AUDIT_SEAL_INTERVAL_SECONDS", default=300, low=10, want="at least 10 seconds"
)

# The SIEM feed: every audit event once, in order, as a JSON line (README "Compliance"),
# to a file and/or syslog ("host:port" or a socket path). Both empty: no feed.
SIEM_FEED_PATH = env.str("SIEM_FEED_PATH", default="")
SIEM_FEED_SYSLOG = env.str("SIEM_FEED_SYSLOG", default="")
# The feed's cursor (the last event id written). Empty: VAR_DIR/audit/siem.cursor.
SIEM_FEED_CURSOR = env.str("SIEM_FEED_CURSOR", default="")
SIEM_FEED_INTERVAL_SECONDS = env.integer("SIEM_FEED_INTERVAL_SECONDS", default=15)

for _name, _value in (
    ("AUDIT_SEAL_SYSLOG", AUDIT_SEAL_SYSLOG),
    ("SIEM_FEED_SYSLOG", SIEM_FEED_SYSLOG),
):
    require(
        _name,
        not _value or _value.startswith("/") or bool(re.fullmatch(r"[\w.\-]+:\d{1,5}", _value)),
        "empty, host:port (UDP) or the path of a syslog socket such as /dev/log",
    )

__all__ = [
    "AUDIT_SEAL_HTTP_URL",
    "AUDIT_SEAL_INTERVAL_SECONDS",
    "AUDIT_SEAL_KEY_FILE",
    "AUDIT_SEAL_PATH",
    "AUDIT_SEAL_PUBLIC_KEY",
    "AUDIT_SEAL_SYSLOG",
    "SIEM_FEED_CURSOR",
    "SIEM_FEED_INTERVAL_SECONDS",
    "SIEM_FEED_PATH",
    "SIEM_FEED_SYSLOG",
]
