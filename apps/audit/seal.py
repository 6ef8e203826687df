"""Seals of the chain head: the last id, the last hash, a count and a time, signed with the
Ed25519 seal key (apps/audit/seal_keys.py) and written outside PostgreSQL
(apps/audit/seal_sinks.py).

A seal proves what the chain held when it was made. Someone who can rewrite the table can
re-hash every event after a change, cut the tail or empty it, but cannot sign a seal that
agrees with the result, and cannot take back a seal already on write-once storage: the
verifier (apps/audit/seal_verify.py) compares the chain with the seals and says where they
part.

Seal format (version 1), one canonical JSON object (apps.audit.chain.canonical_json)::

    {"count":1200,"first_id":1,"format":"enclave-audit-seal/1","key_id":"<16 hex>",
     "last_hash":"<64 hex>","last_id":1200,"last_time":"2026-12-07T05:20:00.123456Z",
     "prev_seal":"<64 hex>","seq":42,"sealed_at":"2026-12-07T05:20:03.000001Z",
     "signature":"<128 hex>"}

``signature`` is Ed25519 over the same object without ``signature``; ``prev_seal`` is the
SHA-256 of the previous seal's full line ("" for seal 1), so the seals form a chain of
their own and a removed seal shows; ``count`` is the number of events from ``first_id``
to ``last_id`` (ids have no gaps; an archived start moves ``first_id``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, canonical_json, format_time
from apps.audit.seal_keys import key_id, sign, signature_valid, signing_key, trusted_public_key
from apps.audit.seal_sinks import (
    SinkError,
    http_post,
    last_seal_line,
    seal_store_path,
    store_seal,
    stored_seal_lines,
    syslog_send,
)
from apps.audit.verify import verify_chain

log = logging.getLogger(__name__)

SEAL_FORMAT = "enclave-audit-seal/1"
# pg_advisory_xact_lock key serialising sealers (beat and a manual audit_seal): "encseal!".
SEAL_LOCK_KEY = int.from_bytes(b"encseal!", "big") - 2**63


class SealError(Exception):
    """No seal could be made, or a stored seal cannot be read; the message says why."""


@dataclass(frozen=True)
class Seal:
    seq: int
    first_id: int
    last_id: int
    last_hash: str
    count: int
    last_time: str
    sealed_at: str
    prev_seal: str
    key_id: str
    signature: str = ""
    format: str = SEAL_FORMAT

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy is most of the cost of checking a year of
        # seals, and every value here is a str or an int.
        return {name: getattr(self, name) for name in _NAMES}

    def payload(self) -> bytes:
        data = self.as_dict()
        data.pop("signature")
        return canonical_json(data).encode()

    def line(self) -> str:
        return self._line

    def digest(self) -> str:
        return self._digest

    @cached_property
    def _line(self) -> str:
        return canonical_json(self.as_dict())

    @cached_property
    def _digest(self) -> str:
        return hashlib.sha256(self._line.encode()).hexdigest()

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        return self.key_id == key_id(key) and signature_valid(self.payload(), self.signature, key)

    def __str__(self) -> str:
        return f"seal #{self.seq} ({self.sealed_at}: events #{self.first_id}..#{self.last_id})"


_TYPES = {f.name: (int if f.type in ("int", int) else str) for f in fields(Seal)}
_NAMES = tuple(_TYPES)


def parse_seal(text: str, *, where: str = "") -> Seal:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SealError(f"{where}: not a JSON seal ({err})") from err
    if not isinstance(data, dict) or set(data) != set(_TYPES):
        raise SealError(
            f"{where}: not a seal (fields {sorted(data) if isinstance(data, dict) else data!r})"
        )
    for name, kind in _TYPES.items():
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise SealError(f"{where}: seal field {name} must be {kind.__name__}")
    if data["format"] != SEAL_FORMAT:
        raise SealError(f"{where}: unknown seal format {data['format']!r}")
    seal = Seal(**data)
    # The digest the next seal names is of the line as stored (written canonically by
    # line()); a line re-formatted since no longer links, which is tampering too.
    seal.__dict__["_line"] = text.strip()
    return seal


def iter_seals() -> Iterator[Seal]:
    """The seals in the store, oldest first, one at a time. Unreadable lines raise
    SealError."""
    where = str(seal_store_path())
    for n, line in enumerate(stored_seal_lines(), 1):
        yield parse_seal(line, where=f"{where} seal {n}")


def stored_seals() -> list[Seal]:
    return list(iter_seals())


def latest_seal() -> Seal | None:
    """The newest seal in the store, read from its end (sealing and the console's status
    need only it)."""
    line = last_seal_line()
    return parse_seal(line, where=f"{seal_store_path()} last seal") if line else None


@dataclass(frozen=True)
class SealResult:
    seal: Seal
    stored_at: str
    sink_errors: list[str] = field(default_factory=list)


def audit_seal(*, using: str = "default") -> SealResult:
    """Seal the chain head now: check the events since the previous seal, sign, store.

    A seal never vouches for a chain that does not hold: the events after the previous
    seal are walked first (from genesis for the first seal), and a break is a SealError.
    """
    signing_key()  # a missing key fails before anything is read
    trusted = trusted_public_key()
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        previous = latest_seal()
        if previous is not None and not previous.signed_by(trusted):
            raise SealError(
                f"The latest seal in {seal_store_path()} ({previous}) is not signed by the seal "
                "key: the store has been tampered with. Run `manage.py audit_verify`."
            )
        cursor.execute("SELECT min(id), max(id) FROM audit_auditevent")
        first_id, max_id = cursor.fetchone()
        first_id, max_id = first_id or 0, max_id or 0
        if previous is not None and max_id < previous.last_id:
            raise SealError(
                f"The table ends at event #{max_id} but {previous} covers up to "
                f"#{previous.last_id}: events are missing. Run `manage.py audit_verify`."
            )
        if previous is not None and previous.last_id >= first_id > 0:
            cursor.execute("SELECT 1 FROM audit_auditevent WHERE id = %s", [previous.last_id])
            if cursor.fetchone() is None:
                raise SealError(
                    f"Event #{previous.last_id}, the head {previous} vouches for, is gone. "
                    "Run `manage.py audit_verify`."
                )
            start_after, start_hash = previous.last_id, previous.last_hash
        else:
            start_after, start_hash = _chain_start(cursor, first_id)
        report = verify_chain(start_after=start_after, start_hash=start_hash, using=using)
        if not report.intact:
            raise SealError("Not sealed: " + report.summary())
        if report.last is not None:
            last_id, last_hash, last_time = report.last.id, report.last.hash, report.last.time
        elif previous is not None:
            last_id, last_hash, last_time = previous.last_id, previous.last_hash, previous.last_time
        else:
            last_id, last_hash, last_time = 0, GENESIS_HASH, ""
        unsigned = Seal(
            seq=(previous.seq + 1) if previous else 1,
            first_id=first_id if last_id else 0,
            last_id=last_id,
            last_hash=last_hash,
            count=(last_id - first_id + 1) if last_id else 0,
            last_time=last_time,
            sealed_at=format_time(timezone.now()),
            prev_seal=previous.digest() if previous else "",
            key_id="",
        )
        signature, kid = sign(replace(unsigned, key_id=key_id(trusted)).payload())
        seal = replace(unsigned, key_id=kid, signature=signature)
        if not seal.signed_by(trusted):
            raise SealError("The seal key does not match AUDIT_SEAL_PUBLIC_KEY.")
        stored_at = store_seal(seal.seq, seal.line())
    errors = list(_copy_to_sinks(seal))
    log.info("audit chain sealed: %s", seal)
    return SealResult(seal=seal, stored_at=stored_at, sink_errors=errors)


def _chain_start(cursor: object, first_id: int) -> tuple[int, str]:
    """Where the first seal's walk starts: genesis, or the first event kept after an
    archive (its prev_hash is vouched for by the archive's checkpoint)."""
    if first_id <= 1:
        return 0, GENESIS_HASH
    cursor.execute("SELECT prev_hash FROM audit_auditevent WHERE id = %s", [first_id])  # type: ignore[attr-defined]
    return first_id - 1, cursor.fetchone()[0]  # type: ignore[attr-defined]


def _copy_to_sinks(seal: Seal) -> Iterable[str]:
    line = seal.line()
    if settings.AUDIT_SEAL_SYSLOG:
        try:
            syslog_send(settings.AUDIT_SEAL_SYSLOG, line, tag="enclave-seal")
        except SinkError as err:
            log.error("seal %s not sent: %s", seal.seq, err)
            yield str(err)
    if settings.AUDIT_SEAL_HTTP_URL:
        try:
            http_post(settings.AUDIT_SEAL_HTTP_URL, line)
        except SinkError as err:
            log.error("seal %s not sent: %s", seal.seq, err)
            yield str(err)
