"""Erasure figures: time to erase a person with --events audit events (default 10,000),
against erasing one with 10 events in the same run; and what sealing costs an append.

    .venv/bin/python bench/erase.py [--events N] [--runs R] [--others M] [--keep]

Runs against its own throw-away database (enclave_bench_erase on the same server as
DATABASE_URL), created and migrated here and dropped at the end unless --keep. Each run:

1. a person with N/4 conversations (question and answer rows, the answer rated) and N
   audit events written through audit_record, so every one is sealed under their key as
   the chat seals it (question, retrieval with the searched text, answer, feedback); the
   chain also holds M events of other people;
2. the same for a person with 10 events (the baseline: what an erasure costs at all);
3. person_erase for each, timed; then audit_verify over the whole chain must be intact
   and the person's fields must read "erased".

Then appends: 2,000 events with a question and an actor (sealed) against 2,000 with
neither (nothing to seal), one autocommit append each, in this process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "enclave_bench_erase"
from bench.audit import admin_execute  # noqa: E402 - after the path

QUESTION = "How many vacation days can I carry over into the next year, and until when?"


def seed_person(username: str, events: int):
    """A person with `events` sealed audit events (4 per conversation) and their rows."""
    from django.contrib.auth.models import User

    from apps.assistant.models import Conversation, Message
    from apps.audit.services import audit_record

    person = User.objects.create_user(username)
    turns = max(events // 4, 1)
    conversations = Conversation.objects.bulk_create(
        [Conversation(id=uuid.uuid4(), user=person, title=f"{QUESTION} #{n}") for n in range(turns)]
    )
    for conversation in conversations:
        asked = Message.objects.create(conversation=conversation, role="user", content=QUESTION)
        answer = Message.objects.create(
            conversation=conversation,
            role="assistant",
            reply_to=asked,
            content="Five days.",
            feedback=1,
        )
        ids = {"conversation_id": str(conversation.pk), "message_id": asked.pk}
        for action, details in (
            ("chat.question", {"question": QUESTION}),
            (
                "chat.retrieval",
                {"searched_for": QUESTION, "queries_tried": [QUESTION], "mode": "hybrid"},
            ),
            ("chat.answer", {"status": "complete", "model": "SmolLM2", "where": "local"}),
            ("chat.feedback", {"value": "up", "message_id": answer.pk}),
        ):
            audit_record(
                actor=person, action=action, target=conversation, details={**ids, **details}
            )
    return person


def seed_others(count: int) -> None:
    from django.contrib.auth.models import User

    from apps.audit.services import audit_record

    others = [User.objects.create_user(f"other-{uuid.uuid4().hex[:8]}") for _ in range(10)]
    for n in range(count):
        audit_record(actor=others[n % 10], action="auth.login", details={"ip": f"10.0.{n % 250}.1"})


def erase_seconds(person) -> float:
    from apps.compliance.erasure import person_erase

    t0 = time.perf_counter()
    person_erase(user=person, actor=None)
    return time.perf_counter() - t0


def append_rate(count: int, *, sealed: bool) -> float:
    from django.contrib.auth.models import User

    from apps.audit.services import audit_record

    actor = User.objects.create_user(f"appender-{uuid.uuid4().hex[:8]}") if sealed else None
    details = {"question": QUESTION} if sealed else {"document_id": 1, "label": "public"}
    t0 = time.perf_counter()
    for _ in range(count):
        audit_record(actor=actor, action="chat.question", details=details)
    return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--others", type=int, default=5_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/enclave")
    db_url = urlparse(base_url)._replace(path=f"/{BENCH_DB}").geturl()
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    admin_execute(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin_execute(base_url, f"CREATE DATABASE {BENCH_DB}")
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        import django

        django.setup()
        from apps.audit.models import AuditEvent
        from apps.audit.personal import ERASED, reveal_events
        from apps.audit.verify import verify_chain

        print(
            f"Erasure bench on {BENCH_DB}: a person with {args.events:,} events, {args.runs} runs"
        )
        seed_others(args.others)
        big, small = [], []
        for run in range(1, args.runs + 1):
            t0 = time.perf_counter()
            person = seed_person(f"leaver-{run}", args.events)
            baseline = seed_person(f"brief-{run}", 10)
            seeded = time.perf_counter() - t0
            pk = person.pk
            small.append(erase_seconds(baseline))
            big.append(erase_seconds(person))
            report = verify_chain()
            assert report.intact, report.summary()
            sample = reveal_events(
                AuditEvent.objects.filter(actor_pk=pk, action="chat.question")[:5]
            )
            assert sample and all(e.details["question"] == ERASED for e in sample)
            print(
                f"  run {run}: erase {args.events:,} events {big[-1]:.2f} s, 10 events "
                f"{small[-1] * 1000:.0f} ms (ratio {big[-1] / small[-1]:.0f}x); chain intact "
                f"({report.count:,} events); seeding took {seeded:.0f} s"
            )
        print(
            f"Erase a person with {args.events:,} events: {min(big):.2f}-{max(big):.2f} s "
            f"(median {statistics.median(big):.2f} s) over {args.runs} runs; baseline 10 "
            f"events {min(small) * 1000:.0f}-{max(small) * 1000:.0f} ms"
        )
        plain = append_rate(2000, sealed=False)
        sealed = append_rate(2000, sealed=True)
        print(
            f"Appends, one process, autocommit: {plain:,.0f}/s with nothing to seal, "
            f"{sealed:,.0f}/s sealed (ratio {sealed / plain:.2f})"
        )
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            admin_execute(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
