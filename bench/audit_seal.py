"""Figures for the sealed chain and the egress report (README "Compliance"), on a chain of
--events events (default 1,000,000) in a throw-away database (enclave_bench_seal):

    .venv/bin/python bench/audit_seal.py [--events N] [--append-events M] [--writers W]

1. seal cost: the first seal (walks the whole chain from genesis), then a seal after each
   --new-events appended events (the steady state: beat seals what arrived since the last
   seal), and a seal with nothing new;
2. append rate with sealing on vs off: W writer processes append M events through
   audit_record, alternately with no sealer and with a sealer process sealing every
   --seal-every seconds (far more often than beat's 300 s, the worst case); ratio per pair;
3. audit_verify over the whole chain in a fresh process: without seals (the walk alone,
   the baseline), with one seal, and with a year of 5-minute seals (105,120, signed and
   chained like beat's) spread along the chain; seconds, ratio, peak RSS;
4. the egress report over the whole chain's period in a fresh process: seconds, peak RSS.

Events are shaped as the chat writes them (routing.decision with outcome, labels, PII
findings and redactions; llm.call with where, tokens, cost), about one conversation in
five escalated and about half of those allowed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.audit import (  # noqa: E402 - after the path
    LABEL_WEIGHTS,
    LABELS,
    admin_execute,
    append,
    bulk_load,
    child_env,
    turn_opening,
)

BENCH_DB = "enclave_bench_seal"

SEALER = """
import sys, time, django
django.setup()
from apps.audit.seal import audit_seal
every, stop = float(sys.argv[1]), sys.argv[2]
import os
audit_seal()
print("ready", flush=True)
n, spent = 0, 0.0
while not os.path.exists(stop):
    t0 = time.perf_counter()
    audit_seal()
    spent += time.perf_counter() - t0
    n += 1
    time.sleep(every)
print(n, spent)
"""

MEASURED = """
import json, sys, time, django
django.setup()
def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
kind = sys.argv[1]
t0 = time.perf_counter()
if kind == "walk":
    from apps.audit.verify import verify_chain
    report = verify_chain()
elif kind == "sealed":
    from apps.audit.seal_verify import verify_sealed
    report = verify_sealed()
elif kind == "egress":
    from apps.compliance.egress_report import Period
    from apps.compliance.egress_statement import egress_report_build
    r = egress_report_build(period=Period.parse(sys.argv[2], sys.argv[3]), generated_by="bench")
    report = None
    extra = {"sent": len(r["sent"]), "denied": len(r["denied"]), "attested": r["attested"],
             "size_mb": len(json.dumps(r)) / 1e6}
if report is not None:
    assert report.intact, report.summary()
    extra = {"count": report.count}
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mb": vm("VmHWM"), **extra}))
"""


def chat_events(count: int, *, users: list[tuple[int, str]]):
    """Conversations as the chat audits them, with escalations through the gate."""
    rng = random.Random(17)  # noqa: S311 - reproducible synthetic data
    produced, conversation = 0, 0
    while produced < count:
        actor = rng.choice(users)
        conversation += 1
        cid = f"c{conversation}"
        chunks = [
            {
                "chunk_id": f"{rng.randrange(20000)}-{n}",
                "document_id": rng.randrange(20000),
                "label": rng.choices(LABELS, LABEL_WEIGHTS)[0],
            }
            for n in range(4)
        ]
        escalated = rng.random() < 0.2
        if escalated and rng.random() < 0.6:  # people escalate answers from public documents
            chunks = [{**c, "label": "public"} for c in chunks]
        labels = sorted({c["label"] for c in chunks})
        burst = [
            *turn_opening(actor, cid, chunks, rng),
            (
                "llm.call",
                actor,
                "",
                {
                    "conversation_id": cid,
                    "where": "local",
                    "provider": "llama.cpp",
                    "model": "SmolLM2-135M-Instruct",
                    "payload_sha256": "0" * 64,
                    "prompt_tokens": 400,
                    "completion_tokens": 60,
                    "cost": "0",
                    "outcome": "ok",
                },
            ),
            ("chat.answer", actor, "", {"conversation_id": cid, "status": "complete"}),
        ]
        if escalated:
            allowed = labels == ["public"] and rng.random() < 0.9
            reasons = (
                [{"code": "ok", "message": "Every passage is public."}]
                if allowed
                else [
                    {"code": "sensitive_context", "message": "This answer uses internal documents."}
                ]
            )
            findings = ["EMAIL_ADDRESS"] if rng.random() < 0.1 else []
            burst.append(
                (
                    "routing.decision",
                    actor,
                    "",
                    {
                        "conversation_id": cid,
                        "trigger": "user",
                        "outcome": "allow" if allowed else "deny",
                        "reasons": reasons,
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "payload_sha256": hashlib.sha256(cid.encode()).hexdigest(),
                        "labels": labels,
                        "findings": [],
                        "redactions": findings,
                        "chunks": chunks,
                    },
                )
            )
            if allowed:
                prompt, completion = rng.randrange(300, 2000), rng.randrange(50, 400)
                burst.append(
                    (
                        "llm.call",
                        actor,
                        "",
                        {
                            "conversation_id": cid,
                            "where": "external",
                            "provider": "openai",
                            "model": "gpt-4o-mini",
                            "payload_sha256": hashlib.sha256(cid.encode()).hexdigest(),
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "cost": f"{(prompt + completion) * 0.0000006:.6f}",
                            "outcome": "ok",
                        },
                    )
                )
                burst.append(
                    ("chat.answer", actor, "", {"conversation_id": cid, "status": "complete"})
                )
        for item in burst[: count - produced]:
            yield item
            produced += 1


def measured(db_url: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        cwd=ROOT,
        env=child_env(db_url),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3g} (range {min(values):.3g}–{max(values):.3g})"


def year_of_seals(store: Path, total: int) -> int:
    """105,120 seals (a year at beat's 5 minutes) at even positions along the chain,
    signed and chained exactly as audit_seal makes them."""
    from dataclasses import replace

    from apps.audit.models import AuditEvent
    from apps.audit.seal import Seal
    from apps.audit.seal_keys import key_id, sign, signing_key

    n = 105_120
    positions = sorted({max(1, round(total * (i + 1) / n)) for i in range(n)})
    hashes = dict(AuditEvent.objects.filter(id__in=positions).values_list("id", "hash"))
    times = dict(AuditEvent.objects.filter(id__in=positions).values_list("id", "time"))
    kid = key_id(signing_key().public_key())
    previous = None
    lines = []
    for seq, position in enumerate(positions, 1):
        unsigned = Seal(
            seq=seq,
            first_id=1,
            last_id=position,
            last_hash=hashes[position],
            count=position,
            last_time=times[position].isoformat(),
            sealed_at=times[position].isoformat(),
            prev_seal=previous.digest() if previous else "",
            key_id=kid,
        )
        signature, _ = sign(unsigned.payload())
        previous = replace(unsigned, signature=signature)
        lines.append(previous.line())
    store.write_text("\n".join(lines) + "\n")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--append-events", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--new-events", type=int, default=1500)
    parser.add_argument("--seal-every", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/enclave")
    from urllib.parse import urlparse

    db_url = urlparse(base_url)._replace(path=f"/{BENCH_DB}").geturl()
    var = Path(tempfile.mkdtemp(prefix="bench-seal-"))
    os.environ.update({"DATABASE_URL": db_url, "VAR_DIR": str(var), "LOG_LEVEL": "WARNING"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    admin_execute(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin_execute(base_url, f"CREATE DATABASE {BENCH_DB}")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=child_env(db_url),
            check=True,
        )
        import django

        django.setup()
        from django.contrib.auth.models import Group, User
        from django.db import connection

        from apps.audit.seal import audit_seal
        from apps.audit.seal_sinks import seal_store_path
        from apps.audit.services import audit_record

        bulk = args.events - 2 * args.rounds * args.append_events - args.rounds * args.new_events
        print(f"Seal bench on {BENCH_DB}: {args.events:,} events, var {var}")
        seconds = bulk_load(bulk, events=chat_events)
        print(f"0. bulk load {bulk:,} events: {seconds:.0f} s")
        groups = [Group.objects.create(name=f"team{n}") for n in range(5)]
        for n, user in enumerate(User.objects.filter(username__startswith="bench")):
            user.groups.add(groups[n % 5])
        connection.close()

        print("1. seal cost")
        t0 = time.perf_counter()
        audit_seal()
        print(
            f"   first seal, walking {bulk:,} events from genesis: {time.perf_counter() - t0:.1f} s"
        )
        steady, idle = [], []
        for _ in range(args.rounds):
            for n in range(args.new_events):
                audit_record(actor=None, action="chat.feedback", details={"n": n, "rating": 1})
            t0 = time.perf_counter()
            audit_seal()
            steady.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            audit_seal()
            idle.append((time.perf_counter() - t0) * 1000)
        print(f"   a seal after {args.new_events:,} new events: {spread(steady)} ms")
        print(f"   a seal with nothing new: {spread(idle)} ms")
        connection.close()

        print(f"2. append rate, {args.writers} writers, {args.append_events:,} events per run")
        ratios = []

        def sealing_on(round_: int) -> tuple[float, str, str]:
            stop = var / f"stop-{round_}"
            sealer = subprocess.Popen(
                [sys.executable, "-c", SEALER, str(args.seal_every), str(stop)],
                cwd=ROOT,
                env=child_env(db_url),
                stdout=subprocess.PIPE,
                text=True,
            )
            assert sealer.stdout is not None
            assert sealer.stdout.readline().strip() == "ready"  # started before, not during
            rate = append(db_url, writers=args.writers, total=args.append_events, mode="txn")
            stop.touch()
            seals, spent = sealer.communicate(timeout=600)[0].split()
            return rate, seals, spent

        for round_ in range(args.rounds):
            # Off-on, then on-off: a drift in the machine's load cancels out across rounds.
            if round_ % 2 == 0:
                off = append(db_url, writers=args.writers, total=args.append_events, mode="txn")
                on, seals, spent = sealing_on(round_)
            else:
                on, seals, spent = sealing_on(round_)
                off = append(db_url, writers=args.writers, total=args.append_events, mode="txn")
            ratios.append(on / off)
            print(
                f"   off {off:,.0f}/s, on {on:,.0f}/s ({seals} seals, "
                f"{float(spent):.2f} s sealing): ratio {on / off:.3f}"
            )
        print(f"   ratio on/off: {spread(ratios)} (goal ≥ 0.95)")

        print("3. audit_verify over the whole chain (fresh process each)")
        store = seal_store_path()
        from apps.audit.models import AuditEvent

        total = AuditEvent.objects.count()

        def walk_and_sealed(round_: int) -> tuple[dict, dict]:
            # Alternate which runs first, so the machine's load drifts out of the ratio.
            if round_ % 2 == 0:
                walk = measured(db_url, "walk")
                return walk, measured(db_url, "sealed")
            sealed = measured(db_url, "sealed")
            return measured(db_url, "walk"), sealed

        for label, prepare in (("the seals made above", None), ("a year of seals", year_of_seals)):
            if prepare is not None:
                prepare(store, total)
            seals = sum(1 for _ in open(store))
            ratios = []
            for round_ in range(args.rounds):
                walk, one = walk_and_sealed(round_)
                ratios.append(one["seconds"] / walk["seconds"])
                print(
                    f"   walk alone: {walk['count']:,} events {walk['seconds']:.1f} s, "
                    f"peak {walk['peak_mb']:.0f} MB; with {seals:,} seals: {one['seconds']:.1f} s "
                    f"({ratios[-1]:.3f}x), peak {one['peak_mb']:.0f} MB"
                )
            print(f"   with {label}: ratio {spread(ratios)}")

        print("4. egress report over the whole period (fresh process each)")

        start = AuditEvent.objects.order_by("id").values_list("time", flat=True).first()
        end = AuditEvent.objects.order_by("-id").values_list("time", flat=True).first()
        for _ in range(args.rounds):
            rep = measured(db_url, "egress", start.date().isoformat(), end.date().isoformat())
            print(
                f"   {rep['seconds']:.1f} s, peak {rep['peak_mb']:.0f} MB: {rep['sent']:,} sent,"
                f" {rep['denied']:,} denied, attested {rep['attested']}, "
                f"report {rep['size_mb']:.1f} MB JSON"
            )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_execute(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
