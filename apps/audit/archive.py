"""Archives of old events and the signed checkpoints that keep the chain verifiable.

An archive is a JSON-lines file: one event per line, its canonical object (see
apps.audit.chain) plus its "hash". Next to it, ``<archive>.checkpoint.json`` records the
first and last id, the hash the archive starts from, the last hash, the count, the
archive file's SHA-256, and an HMAC-SHA256 over all of that with AUDIT_CHECKPOINT_KEY
(SECRET_KEY when unset). With the checkpoint, ``audit_verify --from-checkpoint`` can
start at the first event after the archive and ``audit_verify --archive`` can check the
archive on its own, so archived rows could be moved off the database without losing
the ability to prove the rest of the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit.chain import (
    GENESIS_HASH,
    canonical_document,
    canonical_json,
    fields_from_document,
    format_time,
)
from apps.audit.models import AuditEvent
from apps.audit.verify import VERIFY_COLUMNS, ChainReport, ChainWalker, iter_table_batches

CHECKPOINT_FORMAT = "enclave-audit-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint file that is missing, malformed or not signed with our key."""


@dataclass(frozen=True)
class Checkpoint:
    format: str
    before: str
    first_id: int
    start_hash: str  # prev_hash of the first archived event
    last_id: int
    last_hash: str
    last_time: str
    count: int
    archive_file: str
    archive_sha256: str
    created_at: str
    key_name: str
    hmac_sha256: str = ""

    def signed_payload(self) -> bytes:
        data = asdict(self)
        data.pop("hmac_sha256")
        return canonical_json(data).encode()


def checkpoint_key() -> tuple[str, bytes]:
    """The HMAC key and the name of the setting it came from."""
    dedicated = settings.AUDIT_CHECKPOINT_KEY
    if dedicated:
        return "AUDIT_CHECKPOINT_KEY", str(dedicated).encode()
    return "SECRET_KEY", str(settings.SECRET_KEY).encode()


def sign(checkpoint: Checkpoint) -> Checkpoint:
    name, key = checkpoint_key()
    unsigned = replace(checkpoint, key_name=name, hmac_sha256="")
    mac = hmac.new(key, unsigned.signed_payload(), hashlib.sha256).hexdigest()
    return replace(unsigned, hmac_sha256=mac)


def checkpoint_path_for(archive: Path) -> Path:
    return archive.with_name(archive.name + ".checkpoint.json")


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and authenticate a checkpoint; CheckpointError if it was not signed by us."""
    try:
        data = json.loads(Path(path).read_text())
        checkpoint = Checkpoint(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if checkpoint.format != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {checkpoint.format!r}")
    name, key = checkpoint_key()
    expected = hmac.new(key, checkpoint.signed_payload(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, checkpoint.hmac_sha256):
        raise CheckpointError(
            f"{path}: the signature does not match (altered, or signed with another key "
            f"than {name})"
        )
    return checkpoint


def write_archive(*, before: datetime, out: Path, batch_size: int = 5000) -> Checkpoint:
    """Write events with time < before to `out` (JSON lines) and its signed checkpoint.

    The chain is verified while writing: a broken chain is never archived and signed.
    Raises ValueError when there is nothing to archive or the chain is broken.
    """
    upto = (
        AuditEvent.objects.filter(time__lt=before)
        .order_by("-time", "-id")
        .values_list("id", flat=True)
        .first()
    )
    if upto is None:
        raise ValueError(f"no events before {format_time(before)}")
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    walker = ChainWalker()
    digest = hashlib.sha256()
    first_prev = GENESIS_HASH
    try:
        with tmp.open("wb") as fh:
            for rows in iter_table_batches(after_id=0, upto_id=upto, batch_size=batch_size):
                if walker.count == 0 and rows:
                    first_prev = rows[0][VERIFY_COLUMNS.index("prev_hash")]
                if not walker.feed(rows):
                    raise ValueError(walker.report().summary())
                chunk = b"".join(_archive_line(row) for row in rows)
                digest.update(chunk)
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        last = walker.last
        assert last is not None and walker.first is not None
        checkpoint = sign(
            Checkpoint(
                format=CHECKPOINT_FORMAT,
                before=format_time(before),
                first_id=walker.first.id,
                start_hash=first_prev,
                last_id=last.id,
                last_hash=last.hash,
                last_time=last.time,
                count=walker.count,
                archive_file=out.name,
                archive_sha256=digest.hexdigest(),
                created_at=format_time(timezone.now()),
                key_name="",
            )
        )
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    cp_path = checkpoint_path_for(out)
    cp_path.write_text(json.dumps(asdict(checkpoint), indent=2, sort_keys=True) + "\n")
    return checkpoint


def _archive_line(row: tuple[Any, ...]) -> bytes:
    fields = dict(zip(VERIFY_COLUMNS, row, strict=True))
    stored_hash = fields.pop("hash")
    doc = canonical_document(**fields)
    doc["hash"] = stored_hash
    return canonical_json(doc).encode("ascii") + b"\n"


def iter_archive(path: Path) -> Iterator[dict[str, Any]]:
    with Path(path).open("rb") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def verify_archive(
    *, archive: Path, checkpoint: Checkpoint | None = None, batch_size: int = 5000
) -> ChainReport:
    """Check an archive file line by line and against its checkpoint."""
    archive = Path(archive)
    if checkpoint is None:
        checkpoint = load_checkpoint(checkpoint_path_for(archive))
    walker = ChainWalker(start_after=checkpoint.first_id - 1, start_hash=checkpoint.start_hash)
    digest = hashlib.sha256()
    with archive.open("rb") as fh:
        for raw in fh:
            digest.update(raw)
    batch: list[tuple[Any, ...]] = []
    for doc in iter_archive(archive):
        fields = fields_from_document(doc)
        batch.append((*(fields[c] for c in VERIFY_COLUMNS[:-1]), doc.get("hash", "")))
        if len(batch) >= batch_size:
            if not walker.feed(batch):
                return walker.report()
            batch = []
    if batch and not walker.feed(batch):
        return walker.report()
    report = walker.report()
    problem = ""
    if digest.hexdigest() != checkpoint.archive_sha256:
        problem = "the archive file's SHA-256 differs from the one its checkpoint signed"
    elif report.count != checkpoint.count:
        problem = f"the archive holds {report.count} events, its checkpoint {checkpoint.count}"
    elif report.last is None or report.last.hash != checkpoint.last_hash:
        problem = "the archive's last hash differs from its checkpoint's"
    if problem:
        return ChainReport(
            intact=False,
            count=report.count,
            first=report.first,
            last=report.last,
            broken_at=checkpoint.last_id,
            problem=problem,
            start_after=report.start_after,
        )
    return report
