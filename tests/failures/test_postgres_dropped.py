"""The web process's PostgreSQL connection is terminated (pg_terminate_backend from
another connection) in the middle of an upload.

The uploader gets a clear error, not a 500 page; nothing half-written stays behind (no
document row, no stored file, no audit event for it) and the audit chain still verifies.
The termination is injected at two points inside the upload's transaction: before the
document row is written, and between the document row and its audit event.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import connection
from django.db.models.signals import post_save, pre_save
from django.urls import reverse

from apps.assistant.models import Message
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.knowledge import services
from apps.knowledge.models import Document
from tests.conftest import wait_for_documents
from tests.failures import helpers
from tests.support import fixtures

# enclave_env: an upload enqueues its ingestion; it must go to the test broker, never to
# the default one a `make run` on this machine consumes.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enclave_env")]

DB_DOWN = "database"


def _terminate_own_backend() -> None:
    """Kill this connection's server process from another connection, and wait until it
    is gone: the next statement on it fails as it would after a server restart."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname="postgres",
        autocommit=True,
    ) as admin:  # fmt: skip
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        helpers.wait_until(
            lambda: (
                not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            ),
            timeout=10,
            what=f"backend {pid} to exit",
        )


@pytest.fixture
def cut_connection(request) -> Iterator[None]:
    """Terminate the connection once, at the signal named by the parameter."""
    signal = {"before-row": pre_save, "before-audit": post_save}[request.param]
    fired = []

    def receiver(sender, instance, **kwargs) -> None:  # noqa: ANN001
        if not fired:
            fired.append(instance)
            _terminate_own_backend()

    signal.connect(receiver, sender=Document, weak=False)
    try:
        yield
    finally:
        signal.disconnect(receiver, sender=Document)
    assert fired, "the connection was never cut"


@pytest.mark.parametrize("cut_connection", ["before-row", "before-audit"], indirect=True)
def test_connection_dropped_mid_upload_is_a_clear_error_and_leaves_nothing_half_written(
    client, settings, fixture_dir, cut_connection
):
    admin = helpers.admin_user()
    collection = helpers.make_collection("Dropped", groups=[], actor=admin)
    client.force_login(admin)
    media = settings.MEDIA_ROOT
    before = {p for p in media.rglob("*") if p.is_file()} if media.exists() else set()
    last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    path = fixtures.make_markdown(fixture_dir)

    with path.open("rb") as fh:
        resp = client.post(
            reverse("knowledge:upload_files"),
            {"collection": collection.pk, "files": [fh]},
            HTTP_ACCEPT="application/json",
        )
    assert resp.status_code == 503, resp.content
    body = resp.json()
    [result] = body["results"]
    assert not result["ok"]
    assert DB_DOWN in result["message"] and path.name in result["message"], result
    assert "not stored" in result["message"]

    # The next request gets a fresh connection; nothing of the upload is there.
    assert not Document.objects.filter(original_name=path.name).exists()
    after = {p for p in media.rglob("*") if p.is_file()} if media.exists() else set()
    assert after == before, f"stored file left behind: {after - before}"
    assert not AuditEvent.objects.filter(id__gt=last_event or 0, action="document.uploaded")
    report = verify_chain()
    assert report.intact, report

    # And the same upload works now that the database answers again.
    with path.open("rb") as fh:
        resp = client.post(
            reverse("knowledge:upload_files"),
            {"collection": collection.pk, "files": [fh]},
            HTTP_ACCEPT="application/json",
        )
    assert resp.status_code == 200 and resp.json()["results"][0]["ok"], resp.content
    doc = Document.objects.get(original_name=path.name)
    assert AuditEvent.objects.filter(action="document.uploaded", target_id=str(doc.pk)).exists()
    assert verify_chain().intact


VACATION = (
    "# Vacation policy\n\n## Vacation days\n\n"
    "New employees get 25 vacation days per year. Unused vacation days can be carried over "
    "until March 31 of the next year.\n"
)


@pytest.mark.usefixtures("live_worker", "live_llm")
def test_connection_dropped_while_an_answer_streams_keeps_the_answer_and_its_audit(
    client, settings
):
    """The stream outlives the connection it started on: the answer and its audit events
    are written on a fresh one, so the turn is whole and the chain verifies."""
    settings.LOCAL_LLM_MAX_TOKENS = 64
    readers = Group.objects.create(name="Drop readers")
    collection = helpers.make_collection("Dropped chat", groups=[readers])
    doc, _ = services.document_create(
        collection=collection, upload=ContentFile(VACATION.encode(), name="v.md"), user=None
    )
    assert wait_for_documents([doc.pk])[doc.pk].status == "indexed"
    user = helpers.employee("drop-eve", readers)
    client.force_login(user)
    resp = client.post(
        reverse("assistant:ask"), {"question": "How many vacation days do new employees get?"}
    )
    assert resp.status_code == 200
    body, cut = "", False
    for chunk in resp.streaming_content:
        body += chunk.decode()
        if not cut and "event: token" in body:
            _terminate_own_backend()
            cut = True
    assert cut
    events = helpers.parse_sse(body)
    [done] = [data for kind, data in events if kind == "done"]
    assert done["status"] == "complete", done
    reply = Message.objects.get(pk=done["message_id"])
    assert reply.status == Message.Status.COMPLETE and reply.content
    actions = list(
        AuditEvent.objects.filter(conversation_id=done["conversation_id"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["chat.question", "chat.retrieval", "llm.call", "chat.answer"]
    assert verify_chain().intact
