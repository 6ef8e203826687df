"""Audit trail figures: concurrent append rate, verification rate and memory, console
query times, export rate, on a chain of --events events (default 1,000,000).

    .venv/bin/python bench/audit.py [--events N] [--append-events M] [--writers W] [--keep]

Runs against its own throw-away database (enclave_bench_audit on the same server as
DATABASE_URL), created and migrated here and dropped at the end unless --keep. Steps:

1. bulk-load N - M correctly chained events (hashes computed exactly as audit_record
   does, written with COPY through the table's insert trigger, so every row is checked
   to extend the chain), with a realistic mix of chat, routing, document and sign-in
   events spread over the past year;
2. append M events through audit_record from 1 process (baseline), then from W OS
   processes at once, one transaction per event; report events/s and the ratio;
3. run `manage.py audit_verify` in a fresh process over the whole chain and over its
   last 10%, reporting events/s and peak RSS (VmHWM); flat memory means it streams;
4. time the console's queries (first page and a deep page per filter, provenance,
   model register) and a full CSV export in a fresh process (rate, peak RSS).
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
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "enclave_bench_audit"
APPEND_GOAL = 500.0  # events/s with 4 writers, from the issue

WRITER = """
import json, sys, time, django
django.setup()
from django.db import transaction
from apps.audit.services import audit_record
writer, count, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
in_transaction = sys.argv[4] == "txn"
while time.time() < start_at:
    time.sleep(0.002)
t0 = time.time()
for n in range(count):
    details = {"conversation_id": f"bench-w{writer}-{n // 6}",
               "question": "How many vacation days do new employees get?",
               "writer": writer, "n": n}
    if in_transaction:
        # As a service does it: the action's writes and its event in one transaction.
        with transaction.atomic():
            audit_record(actor=None, action="chat.question", details=details)
    else:
        # A standalone event (sign-in, a worker's status change) in autocommit.
        audit_record(actor=None, action="chat.question", details=details)
print(json.dumps({"start": t0, "end": time.time()}))
"""

# A fresh interpreter: Django set up, then the command; VmHWM is its peak resident set.
MEASURED = """
import json, sys, time, django
django.setup()
def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
base = vm("VmRSS")
kind = sys.argv[1]
t0 = time.perf_counter()
if kind == "verify":
    from apps.audit.verify import verify_chain
    start_after = int(sys.argv[2])
    start_hash = sys.argv[3]
    report = verify_chain(start_after=start_after, start_hash=start_hash)
    assert report.intact, report.summary()
    count = report.count
elif kind == "verify_command":
    from io import StringIO
    from django.core.management import call_command
    out = StringIO()
    call_command("audit_verify", stdout=out)
    count = int(out.getvalue().split("intact: ")[1].split()[0])
elif kind == "export":
    from apps.compliance import exports, selectors
    count = 0
    size = 0
    rows = selectors.events_for_export(filters=selectors.EventFilter(), upto_id=10**12)
    for chunk in exports.csv_stream(rows):
        size += len(chunk)
    count = selectors.last_event_id()
else:
    raise SystemExit(kind)
seconds = time.perf_counter() - t0
print(json.dumps({"count": count, "seconds": seconds, "base_mb": base, "peak_mb": vm("VmHWM")}))
"""

QUESTIONS = [
    "What is the travel expense limit for client visits abroad?",
    "How do I request access to the finance share drive?",
    "Which laptop models are approved for field engineers?",
    "When is the quarterly security training due?",
    "What does the onboarding checklist say about badges?",
]
LABELS = ["public", "internal", "confidential", "restricted"]
LABEL_WEIGHTS = [0.35, 0.35, 0.2, 0.1]


def bench_db_url(base_url: str) -> str:
    parsed = urlparse(base_url)
    return parsed._replace(path=f"/{BENCH_DB}").geturl()


def admin_execute(base_url: str, sql: str) -> None:
    import psycopg

    parsed = urlparse(base_url)
    conninfo = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql)


def child_env(db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "apps.config.settings",
        "PYTHONPATH": str(ROOT),
    }


def run_measured(db_url: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        cwd=ROOT,
        env=child_env(db_url),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- 1. bulk load -------------------------------------------------------------------------


def synthetic_events(count: int, *, users: list[tuple[int, str]]):
    """(action, actor, target, details) tuples in conversation-shaped bursts."""
    rng = random.Random(7)  # noqa: S311 - reproducible synthetic data
    produced = 0
    conversation = 0
    while produced < count:
        actor = rng.choice(users)
        roll = rng.random()
        if roll < 0.08:
            burst = [
                ("auth.login", actor, "", {"ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"})
            ]
        elif roll < 0.12:
            doc = rng.randrange(1, 20000)
            label = rng.choices(LABELS, LABEL_WEIGHTS)[0]
            burst = [
                (
                    rng.choice(["document.uploaded", "document.indexed", "document.label_changed"]),
                    actor,
                    f"doc-{doc}.pdf",
                    {
                        "document_id": doc,
                        "collection_id": rng.randrange(1, 50),
                        "label": label,
                        "sha256": hashlib.sha256(str(doc).encode()).hexdigest(),
                        "chunk_count": rng.randrange(1, 400),
                    },
                )
            ]
        else:
            conversation += 1
            cid = f"c{conversation}"
            chunks = []
            for _ in range(5):
                doc = rng.randrange(1, 20000)
                chunks.append(
                    {
                        "id": f"{doc}-{rng.randrange(300)}",
                        "document_id": doc,
                        "label": rng.choices(LABELS, LABEL_WEIGHTS)[0],
                        "score": round(rng.random(), 4),
                    }
                )
            clean = all(c["label"] == "public" for c in chunks)
            external = clean and rng.random() < 0.5
            payload = hashlib.sha256(f"{cid}-payload".encode()).hexdigest()
            burst = [
                *turn_opening(actor, cid, chunks, rng),
                (
                    "routing.decision",
                    actor,
                    "",
                    {
                        "conversation_id": cid,
                        "allowed": external,
                        "reasons": ["all chunks public"]
                        if clean
                        else ["confidential chunk in context"],
                        "provider": "openai" if external else "",
                        "payload_sha256": payload,
                    },
                ),
                (
                    "llm.call",
                    actor,
                    "",
                    {
                        "conversation_id": cid,
                        "where": "external" if external else "local",
                        "provider": "openai" if external else "llama.cpp",
                        "model": "gpt-4o-mini" if external else "SmolLM2-135M-Instruct",
                        "payload_sha256": payload,
                        "tokens": rng.randrange(200, 2000),
                        "cost": round(rng.random() / 1000, 6) if external else 0,
                        "latency_ms": rng.randrange(200, 5000),
                    },
                ),
                (
                    "chat.answer",
                    actor,
                    "",
                    {"conversation_id": cid, "citations": [{"n": 1, "chunk_id": chunks[0]["id"]}]},
                ),
            ]
            if rng.random() < 0.3:
                burst.append(("chat.feedback", actor, "", {"conversation_id": cid, "rating": 1}))
        for item in burst[: count - produced]:
            yield item
            produced += 1


def turn_opening(actor, cid: str, chunks: list[dict], rng: random.Random) -> list[tuple]:
    """A turn's first two events: the question, and the chunks retrieved for it."""
    return [
        ("chat.question", actor, "", {"conversation_id": cid, "question": rng.choice(QUESTIONS)}),
        ("chat.retrieval", actor, "", {"conversation_id": cid, "chunks": chunks}),
    ]


def bulk_load(count: int, *, events=None) -> float:
    """COPY `count` chained events; returns seconds. `events(count, users=...)` yields
    (action, actor, target, details) tuples (default: synthetic_events)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from apps.audit.chain import GENESIS_HASH, canonical_details, compute_hash, format_time
    from apps.audit.services import labels_from_details

    User = get_user_model()
    users = [(User.objects.create_user(username=f"bench{n}").pk, f"bench{n}") for n in range(200)]
    end = datetime.now(UTC) - timedelta(hours=1)
    start = end - timedelta(days=365)
    step = (end - start) / max(count, 1)
    columns = (
        "id, time, actor_id, actor_pk, actor_username, action, target_type, target_id, "
        "target_repr, details_json, conversation_id, labels, left_premises, prev_hash, hash"
    )
    t0 = time.perf_counter()
    prev = GENESIS_HASH
    with transaction.atomic():
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor, for COPY
            with raw.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
                for i, (action, (pk, name), target, details) in enumerate(
                    (events or synthetic_events)(count, users=users), start=1
                ):
                    when = start + step * i
                    details_json = canonical_details(details)
                    fields = {
                        "actor_pk": pk,
                        "actor_username": name,
                        "action": action,
                        "target_type": "knowledge.document" if target else "",
                        "target_id": str(details.get("document_id", "")) if target else "",
                        "target_repr": target,
                        "details_json": details_json,
                        "conversation_id": details.get("conversation_id", ""),
                        "labels": labels_from_details(details),
                        "left_premises": action == "llm.call" and details["where"] == "external",
                    }
                    digest = compute_hash(id=i, time=when, prev_hash=prev, **fields)
                    copy.write_row(
                        (
                            i,
                            format_time(when),
                            pk,
                            pk,
                            name,
                            action,
                            fields["target_type"],
                            fields["target_id"],
                            target,
                            details_json,
                            fields["conversation_id"],
                            "{" + ",".join(fields["labels"]) + "}",
                            fields["left_premises"],
                            prev,
                            digest,
                        )
                    )
                    prev = digest
                    if i % 100000 == 0:
                        print(f"    loaded {i:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
    seconds = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
        # Write the loaded pages out now, so the append figures below are not measured
        # while the server is still flushing a gigabyte of freshly loaded data.
        cursor.execute("CHECKPOINT")
    return seconds


# --- 2. append ----------------------------------------------------------------------------


def database_ceilings(db_url: str, *, seconds: float = 1.5) -> tuple[float, float]:
    """What the database allows one client, with no Python in between, in calls/s:
    (a trivial one-row INSERT + COMMIT, a bare audit_append() call in autocommit).

    Appends are serialised through their commit (the append lock is released only once
    the commit's WAL flush is done, or a later event could link to one a crash loses), so
    no number of writers gets past the second figure; it moves with the disk's fsync
    latency, which every database on the server shares, and with the CPU left over by
    whatever else runs. Measured before and after each append run.
    """
    import psycopg

    from apps.audit.chain import canonical_details, canonical_parts
    from apps.audit.services import _APPEND_ORDER, _APPEND_SQL

    details_json = canonical_details({"conversation_id": "bench-ceiling", "n": 0})
    fields = {
        "actor_pk": None,
        "actor_username": "",
        "action": "chat.question",
        "target_type": "",
        "target_id": "",
        "target_repr": "",
        "details_json": details_json,
        "conversation_id": "bench-ceiling",
        "labels": [],
        "left_premises": False,
    }
    params = [None, *(fields[name] for name in _APPEND_ORDER), *canonical_parts(**fields)]
    rates = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (n integer)")
        for sql, args in (
            ("INSERT INTO bench_commit_probe VALUES (1)", None),
            (_APPEND_SQL, params),
        ):
            done = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                conn.execute(sql, args)
                done += 1
            rates.append(done / (time.perf_counter() - t0))
        conn.execute("DROP TABLE bench_commit_probe")
    return rates[0], rates[1]


def append(db_url: str, *, writers: int, total: int, mode: str) -> float:
    """events/s for `writers` processes appending `total` events together."""
    start_at = time.time() + 3.0
    each = total // writers
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(each), str(start_at), mode],
            cwd=ROOT,
            env=child_env(db_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    spans = []
    for proc in procs:
        out, err = proc.communicate(timeout=1800)
        if proc.returncode:
            raise SystemExit(f"writer failed:\n{err}")
        spans.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    return each * writers / wall


# --- 4. console ---------------------------------------------------------------------------


def time_ms(fn, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def console_timings(total: int) -> list[tuple[str, float, float]]:
    from django.core.cache import cache

    from apps.audit.models import AuditEvent
    from apps.compliance import selectors
    from apps.compliance.provenance import conversation_provenance
    from apps.compliance.register import model_register
    from apps.compliance.selectors import EventFilter
    from apps.compliance.usage import MODEL_USAGE_CACHE_KEY

    nan = float("nan")

    now = datetime.now(UTC)
    mid = total // 2
    filters = {
        "no filter": EventFilter(),
        "action=llm.call": EventFilter(action="llm.call"),
        "action=document.*": EventFilter(action="document.*"),
        "user=bench17": EventFilter(username="bench17"),
        "label=restricted": EventFilter(label="restricted"),
        "label=public": EventFilter(label="public"),
        "left the premises": EventFilter(left_premises=True),
        "last 30 days": EventFilter(start=now - timedelta(days=30)),
        "a week in the middle": EventFilter(
            start=now - timedelta(days=190), end=now - timedelta(days=183)
        ),
        "label=confidential + user=bench3": EventFilter(label="confidential", username="bench3"),
        "left + 2 months": EventFilter(
            left_premises=True, start=now - timedelta(days=120), end=now - timedelta(days=60)
        ),
    }
    rows = []
    for name, f in filters.items():
        first = time_ms(lambda f=f: selectors.event_page(filters=f))
        deep = time_ms(lambda f=f: selectors.event_page(filters=f, before=mid))
        rows.append((name, first, deep))
    cid = AuditEvent.objects.filter(id__gt=mid).exclude(conversation_id="").first().conversation_id
    rows.append(
        (
            "provenance of one conversation",
            time_ms(lambda: conversation_provenance(conversation_id=cid)),
            float("nan"),
        )
    )

    def cold_register() -> None:
        cache.delete(MODEL_USAGE_CACHE_KEY)
        model_register()

    # Cold: the first view after a restart counts every llm.call/chat.answer event; warm:
    # later views count only the events appended since (here, none).
    rows.append(("model register, cold (counts the trail)", time_ms(cold_register, 3), nan))
    rows.append(("model register, warm (cached counts)", time_ms(model_register), nan))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--append-events", type=int, default=4000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/enclave")
    db_url = bench_db_url(base_url)
    os.environ["DATABASE_URL"] = db_url
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
        from django.db import connection

        from apps.audit.models import AuditEvent

        modes = {
            "txn": "inside the caller's transaction.atomic()",
            "auto": "standalone (autocommit)",
        }
        appended = 2 * len(modes) * args.append_events
        bulk = max(args.events - appended, 0)
        print(
            f"Audit bench on {BENCH_DB}: {args.events:,} events "
            f"({bulk:,} bulk + {appended:,} appended)"
        )
        print(f"1. bulk load of {bulk:,} chained events (COPY through the insert trigger)")
        seconds = bulk_load(bulk)
        print(f"   {bulk / seconds:,.0f} events/s ({seconds:.1f} s)")
        connection.close()

        print(f"2. append through audit_record, {args.append_events:,} events per run")
        for mode, text in modes.items():
            before = database_ceilings(db_url)
            single = append(db_url, writers=1, total=args.append_events, mode=mode)
            many = append(db_url, writers=args.writers, total=args.append_events, mode=mode)
            after = database_ceilings(db_url)
            commit, ceiling = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
            print(f"   {text}:")
            print(
                f"     database alone, 1 client (mean of before/after): INSERT+COMMIT "
                f"{commit:,.0f}/s, bare audit_append() {ceiling:,.0f}/s (the serial ceiling)"
            )
            print(f"     1 writer:  {single:,.0f} events/s (baseline)")
            print(
                f"     {args.writers} writers: {many:,.0f} events/s = {many / single:.2f}x "
                f"baseline, {many / ceiling:.2f}x the ceiling, "
                f"{many / APPEND_GOAL:.2f}x the goal of {APPEND_GOAL:.0f}/s"
            )
        total = AuditEvent.objects.count()
        last = AuditEvent.objects.order_by("-id").first()

        print(f"3. audit_verify over the chain ({total:,} events), fresh process each")
        whole = run_measured(db_url, "verify_command")
        tail_start = total - total // 10
        tail_hash = AuditEvent.objects.get(id=tail_start).hash
        part = run_measured(db_url, "verify", str(tail_start), tail_hash)
        for name, m in (("whole chain", whole), ("last 10%", part)):
            print(
                f"   {name:12s} {m['count']:>10,} events in {m['seconds']:6.1f} s = "
                f"{m['count'] / m['seconds']:>8,.0f} events/s, peak RSS {m['peak_mb']:.0f} MB "
                f"(after django.setup {m['base_mb']:.0f} MB)"
            )
        rate_ratio = (whole["count"] / whole["seconds"]) / (part["count"] / part["seconds"])
        print(
            f"   whole/10%: memory {whole['peak_mb'] / part['peak_mb']:.2f}x for "
            f"{whole['count'] / part['count']:.0f}x the events (bounded), rate {rate_ratio:.2f}x"
        )
        print(f"   chain intact, last event #{last.id} hash {last.hash[:16]}…")

        print("4. console queries (median ms of 5; deep = the page before the middle id)")
        for name, first, deep in console_timings(total):
            deep_text = "" if deep != deep else f"   deep {deep:7.1f} ms"
            print(f"   {name:36s} first {first:7.1f} ms{deep_text}")
        if not args.skip_export:
            export = run_measured(db_url, "export")
            rate = export["count"] / export["seconds"]
            print(
                f"   CSV export of all {export['count']:,} events: {export['seconds']:.1f} s = "
                f"{rate:,.0f} events/s, peak RSS {export['peak_mb']:.0f} MB"
            )
        connection.close()
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            admin_execute(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
