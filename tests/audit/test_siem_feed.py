"""The SIEM feed: every event once, in chain order, as a JSON line in the documented shape,
read back across restarts of the feeder (a new process each time, and a crash that left a
half-written line and a stale cursor), and over syslog."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from apps.audit.services import audit_record
from apps.audit.siem import cursor_path, save_cursor, siem_feed_run

QUESTION = "What is the salary band of my colleague Mallory Example?"
ROOT = Path(__file__).resolve().parents[2]


def record(n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        audit_record(actor=None, action="chat.question", details={"n": i, "question": QUESTION})


def read_back(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.django_db
def test_each_event_becomes_one_line_in_the_documented_shape(settings, tmp_path, django_user_model):
    settings.SIEM_FEED_PATH = str(tmp_path / "siem.jsonl")
    alice = django_user_model.objects.create_user("alice")
    audit_record(
        actor=alice,
        action="llm.call",
        target="conversation 12",
        details={
            "conversation_id": "12",
            "where": "external",
            "provider": "openai",
            "model": "gpt-x",
            "outcome": "ok",
            "prompt_tokens": 120,
            "labels": ["public"],
        },
    )
    audit_record(actor=None, action="auth.login_failed", details={"username": "bob"})
    record(1)
    assert siem_feed_run() == 3
    call, failure, question = read_back(tmp_path / "siem.jsonl")
    assert call["activity_name"] == "llm.call" and call["status"] == "Success"
    assert call["actor"] == {"user": {"uid": str(alice.pk), "name": "alice"}}
    assert call["left_premises"] is True and call["labels"] == ["public"]
    assert call["unmapped"]["provider"] == "openai" and call["unmapped"]["prompt_tokens"] == 120
    assert call["metadata"]["sequence"] == 1 and len(call["metadata"]["hash"]) == 64
    assert call["time_dt"].endswith("Z") and isinstance(call["time"], int)
    assert failure["status"] == "Failure" and failure["category_name"].startswith("Identity")
    assert failure["actor"] == {"app_name": "Enclave"}
    # What a person wrote never reaches the SIEM.
    assert QUESTION not in (tmp_path / "siem.jsonl").read_text()
    assert question["metadata"]["prev_hash"] == failure["metadata"]["hash"]
    assert siem_feed_run() == 0  # nothing new, nothing repeated


@pytest.mark.django_db
def test_a_crash_mid_line_with_a_stale_cursor_neither_loses_nor_repeats(settings, tmp_path):
    feed = tmp_path / "siem.jsonl"
    settings.SIEM_FEED_PATH = str(feed)
    record(5)
    siem_feed_run(batch_size=2)
    # The process died while writing the next batch: half a line, and the cursor from
    # before the last batch it finished.
    with open(feed, "a") as handle:
        handle.write('{"activity_name":"chat.que')
    save_cursor(2)
    record(3, start=5)
    assert siem_feed_run() == 3
    assert [line["metadata"]["sequence"] for line in read_back(feed)] == list(range(1, 9))
    assert cursor_path().read_text().strip() == "8"


@pytest.mark.django_db(transaction=True)
def test_read_back_across_restarts_of_the_feeder_process(enclave_env, tmp_path):
    feed, cursor = tmp_path / "siem.jsonl", tmp_path / "siem.cursor"
    env = {**enclave_env, "SIEM_FEED_PATH": str(feed), "SIEM_FEED_CURSOR": str(cursor)}

    def feeder() -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "siem_feed", "--batch-size", "3"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    record(4)
    assert "Fed 4 events" in feeder()
    record(3, start=4)
    assert "Fed 3 events" in feeder()
    assert "Fed 0 events" in feeder()
    lines = read_back(feed)
    assert [line["metadata"]["sequence"] for line in lines] == list(range(1, 8))
    assert [line["unmapped"] for line in lines] == [{}] * 7  # "n" and the question stay out


@pytest.mark.django_db
def test_the_feed_goes_to_syslog(settings):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    settings.SIEM_FEED_SYSLOG = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        record(2)
        assert siem_feed_run() == 2
        received = [listener.recv(65536).decode() for _ in range(2)]
    finally:
        listener.close()
    bodies = [json.loads(r.split("enclave-audit: ", 1)[1]) for r in received]
    assert [b["metadata"]["sequence"] for b in bodies] == [1, 2]
    assert all(r.startswith("<38>") for r in received)


@pytest.mark.django_db
def test_no_feed_configured_writes_nothing(settings):
    record(2)
    assert siem_feed_run() == 0
    assert not cursor_path().exists()
