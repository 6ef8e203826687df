"""Four OS processes appending at once leave one unbroken chain."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
EACH = 150

# Each writer is a separate interpreter with its own database connection. It waits for
# a shared start time so the four really overlap, then appends one event per
# transaction, as web requests and workers do.
WRITER = """
import sys, time, django
django.setup()
from django.db import transaction
from apps.audit.services import audit_record
writer, count, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
while time.time() < start_at:
    time.sleep(0.005)
for n in range(count):
    with transaction.atomic():
        audit_record(actor=None, action="chat.question",
                     details={"writer": writer, "n": n, "conversation_id": f"w{writer}"})
"""


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_four_processes_appending_concurrently_leave_a_valid_chain():
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "apps.config.settings",
    }
    start_at = time.time() + 3.0  # after all four interpreters have imported Django
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(EACH), str(start_at)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for w in range(WRITERS)
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output.decode(errors="replace")

    events = list(AuditEvent.objects.order_by("id"))
    assert [e.id for e in events] == list(range(1, WRITERS * EACH + 1))
    for w in range(WRITERS):
        mine = [e.details["n"] for e in events if e.details["writer"] == w]
        assert mine == list(range(EACH))  # each writer's events in its own order
    # The writers really interleaved (sequential writers would switch only 3 times).
    switches = sum(
        1
        for a, b in zip(events, events[1:], strict=False)
        if a.details["writer"] != b.details["writer"]
    )
    assert switches > WRITERS
    report = verify_chain()
    assert report.intact, report.summary()
    assert report.count == WRITERS * EACH
