"""audit_verify finds the first broken link; audit_export archives with a checkpoint."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.archive import CheckpointError, load_checkpoint, verify_archive
from apps.audit.chain import compute_hash
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def record(n: int, **details: object) -> list[AuditEvent]:
    return [
        audit_record(actor=None, action="chat.question", details={"n": i, **details})
        for i in range(n)
    ]


def verify_command(*args: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


def test_intact_chain_reports_count_first_and_last():
    events = record(12)
    code, output = verify_command("--batch-size", "5")  # several batches
    assert code == 0
    assert "intact: 12 events" in output
    assert "#1 " in output and "#12 " in output
    assert events[-1].hash in output


def test_empty_chain_is_intact():
    code, output = verify_command()
    assert (code, output.strip()) == (0, "Audit chain intact: no events to check.")


def test_altered_details_are_found_at_the_altered_event(tamper):
    record(10)
    tamper(
        "UPDATE audit_auditevent SET details_json = %s WHERE id = 7",
        ['{"n":600}'],
    )
    code, output = verify_command("--batch-size", "3")
    assert code == 1
    assert "BROKEN at event #7" in output
    assert "stored hash does not match" in output
    assert "6 events before it were sound" in output


def test_a_rehashed_forgery_breaks_the_next_link(tamper):
    """Rewriting an event and its own hash still breaks the link from the event after."""
    record(5)
    event = AuditEvent.objects.get(id=3)
    fields = {
        f: getattr(event, f)
        for f in (
            "id time actor_pk actor_username action target_type target_id target_repr "
            "details_json conversation_id labels left_premises prev_hash"
        ).split()
    }
    fields["actor_username"] = "mallory"
    tamper(
        "UPDATE audit_auditevent SET actor_username = %s, hash = %s WHERE id = 3",
        ["mallory", compute_hash(**fields)],
    )
    report = verify_chain()
    assert not report.intact
    assert report.broken_at == 4
    assert "prev_hash" in report.problem


def test_a_deleted_event_is_named(tamper):
    record(6)
    tamper("DELETE FROM audit_auditevent WHERE id = 4")
    code, output = verify_command()
    assert code == 1
    assert "BROKEN at event #4" in output
    assert "missing" in output


def test_a_changed_label_column_is_caught_even_though_details_say_otherwise(tamper):
    audit_record(actor=None, action="llm.call", details={"where": "external"})
    record(2)
    tamper("UPDATE audit_auditevent SET left_premises = false WHERE id = 1")
    report = verify_chain()
    assert (report.intact, report.broken_at) == (False, 1)


def test_archive_with_checkpoint_round_trips_and_verifies(tmp_path):
    events = record(8)
    # Everything before event 6 is "old" (times strictly increase along these events).
    cut = events[5].time
    assert list(AuditEvent.objects.filter(time__lt=cut).values_list("id", flat=True)) == [
        5,
        4,
        3,
        2,
        1,
    ]
    out = tmp_path / "audit-2025.jsonl"
    stdout = StringIO()
    call_command("audit_export", "--before", cut.isoformat(), "--out", str(out), stdout=stdout)
    assert "Archived 5 events (#1..#5" in stdout.getvalue()

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3, 4, 5]
    assert [line["hash"] for line in lines] == [e.hash for e in events[:5]]
    checkpoint = load_checkpoint(tmp_path / "audit-2025.jsonl.checkpoint.json")
    assert (checkpoint.first_id, checkpoint.last_id, checkpoint.count) == (1, 5, 5)
    assert checkpoint.last_hash == events[4].hash

    # The export itself is in the trail, after the events that were there.
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.details["last_hash"] == checkpoint.last_hash
    assert exported.details["kind"] == "archive"

    assert verify_archive(archive=out).intact
    code, output = verify_command("--archive", str(out))
    assert code == 0 and "intact: 5 events" in output
    code, output = verify_command("--from-checkpoint", str(out) + ".checkpoint.json")
    assert code == 0 and "intact: 4 events after checkpoint #5" in output


def test_tampered_archive_or_checkpoint_is_refused(tmp_path):
    events = record(4)
    out = tmp_path / "a.jsonl"
    call_command(
        "audit_export",
        "--before",
        (events[-1].time + timedelta(seconds=1)).isoformat(),
        "--out",
        str(out),
        stdout=StringIO(),
    )
    cp_path = tmp_path / "a.jsonl.checkpoint.json"
    original = out.read_text()
    out.write_text(original.replace('"n":2', '"n":9'))
    report = verify_archive(archive=out)
    assert not report.intact and report.broken_at == 3

    out.write_text(original)
    data = json.loads(cp_path.read_text())
    data["last_id"] = 3
    cp_path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="signature"):
        load_checkpoint(cp_path)
    code, output = verify_command("--from-checkpoint", str(cp_path))
    assert code == 1 and "signature" in output


def test_export_refuses_an_empty_range_and_existing_files(tmp_path):
    record(1)
    out = tmp_path / "x.jsonl"
    with pytest.raises(CommandError, match="no events before"):
        call_command("audit_export", "--before", "2000-01-01", "--out", str(out))
    out.write_text("keep me")
    with pytest.raises(CommandError, match="exists"):
        call_command("audit_export", "--before", "2999-01-01", "--out", str(out))
    assert out.read_text() == "keep me"
