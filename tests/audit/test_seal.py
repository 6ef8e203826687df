"""Seals of the chain head: audit_seal signs and stores them outside PostgreSQL, and
audit_verify catches each way a table owner could hide a change: a cut tail, a rewritten
and re-hashed event, an emptied table, a seal store replaced by one signed with another
key, a seal taken out. The attacks run as the table's owner would (the `tamper` fixture
switches the append-only triggers off), since the app role cannot change the table."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from apps.audit.chain import canonical_parts
from apps.audit.seal import SealError, audit_seal, stored_seals
from apps.audit.seal_keys import key_id, public_hex, signing_key
from apps.audit.seal_verify import verify_sealed
from apps.audit.services import audit_record
from apps.audit.verify import iter_table_batches
from workers.audit import seal_task

pytestmark = pytest.mark.django_db


def record(n: int, **details: object) -> None:
    for i in range(n):
        audit_record(actor=None, action="chat.question", details={"n": i, **details})


def run(command: str, *args: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue() + err.getvalue()


def rewrite_and_rehash(tamper, event_id: int, *, target_repr: str) -> None:
    """What a table owner with the whole chain in hand can do: change one event and
    recompute its hash and every later prev_hash and hash, so every link holds again."""
    rows = [
        row
        for batch in iter_table_batches(after_id=0, upto_id=10**9, batch_size=1000)
        for row in batch
    ]
    prev_hash = None
    for row in rows:
        ev_id, time_text, *content, stored_prev, stored_hash = row
        if ev_id < event_id:
            continue
        if ev_id == event_id:
            content[5] = target_repr  # CONTENT_FIELDS: target_repr
            prev_hash = stored_prev
        p1, p2, p3, p4 = canonical_parts(*content)
        new_hash = hashlib.sha256(
            "".join((p1, str(ev_id), p2, prev_hash, p3, time_text, p4)).encode()
        ).hexdigest()
        tamper(
            "UPDATE audit_auditevent SET target_repr = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [content[5], prev_hash, new_hash, ev_id],
        )
        prev_hash = new_hash


def test_a_seal_is_signed_and_verify_checks_the_chain_against_it(audit_seal_store):
    record(5)
    code, output = run("audit_seal")
    assert code == 0 and "Sealed: seal #1" in output and "events #1..#5" in output
    (seal,) = stored_seals()
    assert (seal.last_id, seal.count, seal.first_id) == (5, 5, 1)
    assert seal.signed_by(signing_key().public_key())
    assert json.loads(audit_seal_store.read_text())["signature"] == seal.signature
    record(2)  # events after the seal are fine: the seal vouches for the first five
    code, output = run("audit_verify")
    assert code == 0, output
    assert "intact: 7 events" in output and "sealed: seal #1" in output


def test_seals_form_a_chain_of_their_own():
    record(2)
    first = audit_seal().seal
    record(1)
    second = audit_seal().seal
    assert (second.seq, second.prev_seal) == (2, first.digest())
    assert (second.last_id, second.count) == (3, 3)
    assert verify_sealed().intact


def test_a_cut_tail_is_broken_at_the_first_missing_event(tamper):
    record(10)
    audit_seal()
    tamper("DELETE FROM audit_auditevent WHERE id > 7")
    code, output = run("audit_verify")
    assert code == 1
    assert "BROKEN at event #8" in output and "#8..#10 are missing" in output
    # The old walk alone finds nothing wrong: that is the gap seals close.
    assert run("audit_verify", "--without-seals")[0] == 0


def test_a_rewritten_and_rehashed_event_is_broken(tamper):
    record(4)
    audit_seal()
    record(4)
    audit_seal()
    rewrite_and_rehash(tamper, 6, target_repr="nothing to see")
    assert run("audit_verify", "--without-seals")[0] == 0  # every link holds again
    report = verify_sealed()
    assert not report.intact
    # Seal 1 (up to #4) still matches, seal 2 (up to #8) does not: the change is in 5..8.
    assert report.broken_at == 5
    assert "#5..#8" in report.problem and "re-hashed" in report.problem


def test_the_siem_feed_pins_a_rehashed_rewrite_to_the_exact_event(tamper, settings, tmp_path):
    from apps.audit.siem import siem_feed_run

    settings.SIEM_FEED_PATH = str(tmp_path / "siem.jsonl")
    record(8)
    siem_feed_run()
    audit_seal()
    rewrite_and_rehash(tamper, 6, target_repr="nothing to see")
    code, output = run("audit_verify")
    assert code == 1
    assert "BROKEN at event #6" in output and "SIEM feed" in output


def test_an_emptied_table_with_seals_is_broken(tamper):
    record(3)
    audit_seal()
    tamper("DELETE FROM audit_auditevent")
    code, output = run("audit_verify")
    assert code == 1
    assert "BROKEN at event #1" in output and "holds no events" in output


def test_a_seal_store_replaced_by_one_signed_with_another_key_is_broken(audit_seal_store):
    record(3)
    genuine = audit_seal().seal
    forger = Ed25519PrivateKey.generate()
    forged = replace(genuine, last_id=2, count=2, signature="", key_id=key_id(forger.public_key()))
    forged = replace(forged, signature=forger.sign(forged.payload()).hex())
    audit_seal_store.write_text(forged.line() + "\n")
    code, output = run("audit_verify")
    assert code == 1
    assert "not signed by the seal key" in output and "no seal is genuine" in output
    # And nobody seals on top of a store that was tampered with.
    with pytest.raises(SealError, match="not signed by the seal key"):
        audit_seal()


def test_a_seal_taken_out_of_the_store_is_broken(audit_seal_store):
    record(1)
    audit_seal()
    record(1)
    audit_seal()
    record(1)
    audit_seal()
    lines = audit_seal_store.read_text().splitlines()
    audit_seal_store.write_text(lines[0] + "\n" + lines[2] + "\n")
    report = verify_sealed()
    assert not report.intact and "seal #3" in report.problem and "removed" in report.problem


def test_a_broken_chain_is_never_sealed(tamper):
    record(4)
    tamper("UPDATE audit_auditevent SET target_repr = 'edited' WHERE id = 3")
    with pytest.raises(SealError, match="BROKEN at event #3"):
        audit_seal()
    assert stored_seals() == []


def test_a_directory_store_keeps_one_file_per_seal(settings, tmp_path):
    settings.AUDIT_SEAL_PATH = str(tmp_path / "seals") + "/"
    record(2)
    audit_seal()
    audit_seal()
    files = sorted(p.name for p in (tmp_path / "seals").iterdir())
    assert files == ["seal-000000000001.json", "seal-000000000002.json"]
    assert [s.seq for s in stored_seals()] == [1, 2]
    assert verify_sealed().intact


def test_a_configured_key_that_is_missing_says_how_to_make_one(settings, tmp_path):
    settings.AUDIT_SEAL_KEY_FILE = str(tmp_path / "nowhere.key")
    code, output = run("audit_seal")
    assert code == 1 and "audit_seal --generate-key" in output
    code, output = run("audit_seal", "--generate-key")
    assert code == 0 and "public key" in output
    assert (tmp_path / "nowhere.key").stat().st_mode & 0o777 == 0o600
    assert run("audit_seal", "--generate-key")[0] != 0  # never overwritten
    assert run("audit_seal")[0] == 0


def test_verifier_trusts_only_the_configured_public_key(settings):
    record(1)
    audit_seal()
    assert verify_sealed().intact
    settings.AUDIT_SEAL_PUBLIC_KEY = public_hex(Ed25519PrivateKey.generate().public_key())
    report = verify_sealed()
    assert not report.intact and "not signed by the seal key" in report.problem


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_every_seal_is_copied_to_syslog_and_an_http_endpoint(settings):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.bodies = []
    try:
        settings.AUDIT_SEAL_SYSLOG = f"127.0.0.1:{listener.getsockname()[1]}"
        settings.AUDIT_SEAL_HTTP_URL = f"http://127.0.0.1:{server.server_port}/seals"
        record(2)
        result = audit_seal()
        datagram = listener.recv(65536).decode()
    finally:
        server.shutdown()
        listener.close()
    assert result.sink_errors == []
    assert datagram.startswith("<38>enclave-seal: ")
    assert json.loads(datagram.split(": ", 1)[1]) == json.loads(result.seal.line())
    assert [json.loads(b) for b in _Recorder.bodies] == [json.loads(result.seal.line())]


def test_a_sink_that_refuses_is_reported_and_the_seal_still_stored(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.AUDIT_SEAL_HTTP_URL = f"http://127.0.0.1:{port}/seals"
    record(1)
    code, output = run("audit_seal")
    assert code == 0 and "not copied: HTTP" in output
    assert len(stored_seals()) == 1


def test_the_beat_task_seals(settings):
    record(3)
    assert seal_task.apply().get() == 1
    assert stored_seals()[-1].last_id == 3


def test_console_shows_the_latest_seal_and_its_age(officer_client):
    response = officer_client.get(reverse("audit:verify"))
    assert "No seal in" in response.content.decode()
    audit_seal()
    response = officer_client.get(reverse("audit:verify"))
    page = response.content.decode()
    status = response.context["seal"]
    assert status.genuine and status.seal.seq == 1 and status.age_seconds < 60
    assert "Seal #1, made" in page and "s ago" in page
    response = officer_client.post(reverse("audit:verify"))
    assert response.context["report"].intact
    assert "It agrees with all 1 seal" in response.content.decode()
