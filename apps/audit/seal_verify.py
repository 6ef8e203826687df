"""Verifying the chain against its seals: what `audit_verify` and the console's verify page
run.

The walk of apps.audit.verify proves every stored event links to the one before. The seals
add what the table cannot say about itself:

* the seals themselves: the latest is signed by the trusted key and each names the one
  before it (``prev_seal``), so a seal file replaced by one signed with another key, or a
  seal taken out, is broken;
* the tail: the table reaches at least the latest seal's last event (a cut tail, an
  emptied table are broken);
* the history: at every sealed position the event still has the hash the seal recorded,
  so a rewritten event whose hash and every later hash were recomputed is broken. The
  first differing event lies after the last seal that still matches and at or before the
  first that does not; the SIEM feed, which holds every event's hash as it was written,
  pins it to the exact event when it is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connections
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH
from apps.audit.seal import Seal, SealError, iter_seals, latest_seal
from apps.audit.seal_keys import SealKeyError, key_id, trusted_public_key
from apps.audit.seal_sinks import seal_store_path
from apps.audit.siem import fed_hashes
from apps.audit.verify import ChainReport, EventRef, verify_chain


@dataclass(frozen=True)
class SealedReport:
    chain: ChainReport
    seal: Seal | None  # the latest seal signed by the trusted key
    seals_checked: int = 0
    seal_broken_at: int | None = None  # where the chain parts from its seals
    seal_problem: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.chain.intact and not self.seal_problem

    @property
    def broken_at(self) -> int | None:
        return self.chain.broken_at if not self.chain.intact else self.seal_broken_at

    @property
    def problem(self) -> str:
        return self.chain.problem if not self.chain.intact else self.seal_problem

    # The walk's figures, as ChainReport names them (the console's template reads both).
    @property
    def count(self) -> int:
        return self.chain.count

    @property
    def first(self) -> EventRef | None:
        return self.chain.first

    @property
    def last(self) -> EventRef | None:
        return self.chain.last

    def summary(self) -> str:
        if not self.chain.intact:
            return self.chain.summary()
        if self.seal_problem:
            where = f" at event #{self.seal_broken_at}" if self.seal_broken_at else ""
            return f"Audit chain BROKEN{where}: {self.seal_problem}"
        lines = [self.chain.summary()]
        if self.seal is not None:
            lines.append(
                f"  sealed: {self.seal}, last hash {self.seal.last_hash[:16]}…; "
                f"{self.seals_checked} seals checked"
            )
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def verify_sealed(
    *,
    start_after: int = 0,
    start_hash: str = GENESIS_HASH,
    batch_size: int = 5000,
    using: str = "default",
) -> SealedReport:
    """Walk the chain and check it against every seal in the store."""
    chain = verify_chain(
        start_after=start_after, start_hash=start_hash, batch_size=batch_size, using=using
    )
    try:
        scan = _scan_seals(start_after=start_after)
    except SealError as err:
        return SealedReport(
            chain=chain, seal=None, seal_problem=f"the seal store is unreadable: {err}"
        )
    trusted = scan.latest
    if trusted is None:
        if chain.count == 0:
            return SealedReport(chain=chain, seal=None)  # nothing yet for a seal to vouch for
        return SealedReport(
            chain=chain,
            seal=None,
            notes=[
                f"NOT SEALED: no seal in {seal_store_path()} yet, so a cut tail or a re-hashed "
                "chain would not show. Run `manage.py audit_seal` (Celery beat seals every "
                f"{settings.AUDIT_SEAL_INTERVAL_SECONDS} s)."
            ],
        )
    key = trusted_public_key()  # only now: an unsealed chain verifies without any key
    if not trusted.signed_by(key):
        genuine = None
        for seal in iter_seals():  # the rare path: read the store again for the last good one
            if seal.signed_by(key):
                genuine = seal
        after = genuine.last_id if genuine else start_after
        return SealedReport(
            chain=chain,
            seal=genuine,
            seal_broken_at=after + 1,
            seal_problem=(
                f"the latest seal in {seal_store_path()} ({trusted}) is not signed by the seal "
                f"key {key_id(key)} (it names key {trusted.key_id or 'none'}); "
                + (f"the last genuine seal is {genuine}" if genuine else "no seal is genuine")
                + f", so nothing after event #{after} is vouched for"
            ),
        )
    if scan.gap is not None:
        before, seal = scan.gap
        return SealedReport(
            chain=chain,
            seal=trusted,
            seal_broken_at=before.last_id + 1,
            seal_problem=f"{seal} does not follow {before}: a seal was removed or replaced",
        )
    report = SealedReport(chain=chain, seal=trusted, seals_checked=scan.count)
    if not chain.intact:
        return report
    return _against_seals(report, scan.positions, start_after=start_after, using=using)


@dataclass
class _Scan:
    latest: Seal | None = None
    count: int = 0
    gap: tuple[Seal, Seal] | None = None  # the first seal that does not follow its previous
    # Sealed position → (the hash sealed there, the first seal's number).
    positions: dict[int, tuple[str, int]] = field(default_factory=dict)


def _scan_seals(*, start_after: int) -> _Scan:
    """One pass over the store, holding only what the checks need (a year of seals is
    105,120 of them)."""
    scan = _Scan()
    for seal in iter_seals():
        before = scan.latest
        if (
            before is not None
            and scan.gap is None
            and (seal.prev_seal != before.digest() or seal.seq != before.seq + 1)
        ):
            scan.gap = (before, seal)
        if seal.last_id > start_after:
            scan.positions.setdefault(seal.last_id, (seal.last_hash, seal.seq))
        scan.latest = seal
        scan.count += 1
    return scan


def _against_seals(
    report: SealedReport, sealed: dict[int, tuple[str, int]], *, start_after: int, using: str
) -> SealedReport:
    chain, latest = report.chain, report.seal
    assert latest is not None
    end = chain.last.id if chain.last is not None else start_after
    if end < latest.last_id:
        if chain.count == 0 and start_after == 0:
            problem = (
                f"the table holds no events, yet {latest} vouches for {latest.count} events "
                f"up to #{latest.last_id}"
            )
        else:
            problem = (
                f"events #{end + 1}..#{latest.last_id} are missing: {latest} vouches for them, "
                f"and the chain now ends at #{end}"
            )
        return _broken(report, end + 1, problem)
    stored = _hashes_at(sorted(sealed), using=using)
    matched = start_after
    for position in sorted(sealed):
        want, seq = sealed[position]
        if stored.get(position) == want:
            matched = position
            continue
        now = str(stored.get(position))[:16]
        exact = _first_differing(matched, position, using=using)
        if exact is not None:
            where, problem = (
                exact,
                (
                    f"its hash differs from the one the SIEM feed recorded when it was written; "
                    f"seal #{seq} recorded {want[:16]}… for event #{position}, the table now "
                    f"has {now}…: the events from #{exact} on were rewritten and re-hashed"
                ),
            )
        else:
            where, problem = (
                matched + 1,
                (
                    f"the first rewritten event lies in #{matched + 1}..#{position}: seal "
                    f"#{seq} recorded hash {want[:16]}… for event #{position}, the table now "
                    f"has {now}… (the events were rewritten and re-hashed; seals up to "
                    f"#{matched} still match)"
                ),
            )
        return _broken(report, where, problem)
    return report


def _broken(report: SealedReport, event_id: int, problem: str) -> SealedReport:
    return SealedReport(
        chain=report.chain,
        seal=report.seal,
        seals_checked=report.seals_checked,
        seal_broken_at=event_id,
        seal_problem=problem,
    )


def _hashes_at(ids: list[int], *, using: str) -> dict[int, str]:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT id, hash FROM audit_auditevent WHERE id = ANY(%s)",
            [ids],
        )
        return dict(cursor.fetchall())


def _first_differing(after: int, upto: int, *, using: str) -> int | None:
    """The first event in (after, upto] whose hash differs from the SIEM feed's record."""
    fed = fed_hashes(after=after, upto=upto)
    if not fed:
        return None
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT id, hash FROM audit_auditevent WHERE id > %s AND id <= %s ORDER BY id",
            [after, upto],
        )
        for event_id, event_hash in cursor:
            if event_id in fed and fed[event_id] != event_hash:
                return int(event_id)
    return None


@dataclass(frozen=True)
class SealStatus:
    """The latest seal as the console shows it, without walking the chain."""

    seal: Seal | None
    genuine: bool
    age_seconds: float | None
    store: str
    problem: str = ""

    @property
    def age(self) -> str:
        if self.age_seconds is None:
            return ""
        seconds = int(self.age_seconds)
        if seconds < 120:
            return f"{seconds} s"
        if seconds < 7200:
            return f"{seconds // 60} min"
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"

    @property
    def stale(self) -> bool:
        """Older than two beat intervals: the scheduled sealing is not running."""
        limit = 2 * settings.AUDIT_SEAL_INTERVAL_SECONDS
        return self.age_seconds is None or self.age_seconds > limit


def seal_status() -> SealStatus:
    store = str(seal_store_path())
    try:
        latest = latest_seal()
        key = trusted_public_key()
    except (SealError, SealKeyError) as err:
        return SealStatus(seal=None, genuine=False, age_seconds=None, store=store, problem=str(err))
    if latest is None:
        return SealStatus(seal=None, genuine=False, age_seconds=None, store=store)
    sealed_at = datetime.fromisoformat(latest.sealed_at.replace("Z", "+00:00"))
    return SealStatus(
        seal=latest,
        genuine=latest.signed_by(key),
        age_seconds=(timezone.now() - sealed_at).total_seconds(),
        store=store,
    )
