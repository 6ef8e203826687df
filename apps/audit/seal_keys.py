"""The Ed25519 key that signs seals of the chain head and egress reports.

The private key lives in a PEM file (AUDIT_SEAL_KEY_FILE) that the database never holds: a
table owner who rewrites and re-hashes the chain cannot sign a seal that matches it.
Verifiers trust AUDIT_SEAL_PUBLIC_KEY when it is set (an auditor's machine needs only
that), otherwise the public half of the private key; never a key named inside a seal.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

log = logging.getLogger(__name__)


class SealKeyError(Exception):
    """The seal key is missing, unreadable or not an Ed25519 key; the message says which."""


def key_path() -> Path:
    configured = settings.AUDIT_SEAL_KEY_FILE
    return Path(configured) if configured else Path(settings.VAR_DIR) / "audit" / "seal.key"


def generate_key_file(path: Path) -> Ed25519PrivateKey:
    """A new key written to `path` (mode 0600), refusing to overwrite an existing file."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def signing_key() -> Ed25519PrivateKey:
    """The private key; in development (empty AUDIT_SEAL_KEY_FILE) created on first use."""
    path = key_path()
    return _load_private(str(path), path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=4)
def _load_private(path_text: str, _mtime: int) -> Ed25519PrivateKey:
    path = Path(path_text)
    if not path.exists():
        if settings.AUDIT_SEAL_KEY_FILE or not settings.ENCLAVE_DEV:
            raise SealKeyError(
                f"The seal key {path} does not exist. Create one with "
                "`manage.py audit_seal --generate-key` (keep it off the database host) and set "
                "AUDIT_SEAL_KEY_FILE to it."
            )
        log.warning(
            "Generated a development seal key at %s (set AUDIT_SEAL_KEY_FILE in production)", path
        )
        try:
            return generate_key_file(path)
        except FileExistsError:
            pass  # another process made it a moment ago: read theirs
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise SealKeyError(
            f"The seal key {path} cannot be read as a PEM private key: {err}"
        ) from err
    if not isinstance(key, Ed25519PrivateKey):
        raise SealKeyError(f"The seal key {path} is not an Ed25519 key.")
    return key


def trusted_public_key() -> Ed25519PublicKey:
    """The key seals and reports must be signed with (AUDIT_SEAL_PUBLIC_KEY, or ours)."""
    configured = settings.AUDIT_SEAL_PUBLIC_KEY.strip()
    if not configured:
        return signing_key().public_key()
    try:
        if len(configured) == 64 and all(c in "0123456789abcdefABCDEF" for c in configured):
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(configured))
        loaded = serialization.load_pem_public_key(Path(configured).read_bytes())
    except (OSError, ValueError) as err:
        raise SealKeyError(f"AUDIT_SEAL_PUBLIC_KEY cannot be read as a public key: {err}") from err
    if not isinstance(loaded, Ed25519PublicKey):
        raise SealKeyError("AUDIT_SEAL_PUBLIC_KEY is not an Ed25519 public key.")
    return loaded


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(bytes.fromhex(public_hex(key))).hexdigest()[:16]


def sign(payload: bytes) -> tuple[str, str]:
    """(signature as hex, key id) of `payload` with the seal key."""
    key = signing_key()
    return key.sign(payload).hex(), key_id(key.public_key())


def signature_valid(payload: bytes, signature_hex: str, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), payload)
    except (InvalidSignature, ValueError):
        return False
    return True
