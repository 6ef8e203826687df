"""Attack: the same file uploaded twice at the same moment (issue 15, item 7).

Both uploads pass the duplicate check before either row exists; the unique constraint then
decides in PostgreSQL. The race is forced, not hoped for: the first upload's transaction
stays open until the second one's insert is seen waiting on it in pg_stat_activity.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.db import connection, connections, transaction

from apps.audit.models import AuditEvent
from apps.knowledge import services
from apps.knowledge.models import Collection, Document

pytestmark = pytest.mark.django_db(transaction=True)

CONTENT = b"# Leave\n\nEveryone gets 27 days of leave a year.\n"


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def test_two_uploads_of_one_file_at_once_give_one_document_and_the_duplicate_sentence(
    enclave_var,
):
    collection = Collection.objects.create(name="Handbook")
    first_inserted = threading.Event()
    second_pid: list[int] = []
    let_first_commit = threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                doc, _ = services.document_create(
                    collection=collection, upload=ContentFile(CONTENT, name="leave.md"), user=None
                )
                first_inserted.set()
                assert let_first_commit.wait(30), "the second upload never reached its insert"
            outcome["first"] = doc
        except Exception as err:  # noqa: BLE001 - reported by the assertions below
            outcome["first"] = err
            first_inserted.set()
        finally:
            connections.close_all()

    def second() -> None:
        try:
            assert first_inserted.wait(30)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                second_pid.append(cursor.fetchone()[0])
            doc, _ = services.document_create(
                collection=collection, upload=ContentFile(CONTENT, name="leave-copy.md"), user=None
            )
            outcome["second"] = doc
        except Exception as err:  # noqa: BLE001 - reported by the assertions below
            outcome["second"] = err
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    # The second upload's insert waits on the first's uncommitted row: the race is on.
    deadline = time.monotonic() + 30
    while not (second_pid and _waiting_on_a_lock(second_pid[0])):
        assert time.monotonic() < deadline, f"the second upload did not block: {outcome}"
        time.sleep(0.05)
    let_first_commit.set()
    for t in threads:
        t.join(60)

    assert isinstance(outcome["first"], Document), outcome
    refused = outcome["second"]
    assert isinstance(refused, services.UploadRejected), repr(refused)
    assert str(refused) == "leave-copy.md is already in Handbook as “leave” (same content)."
    assert Document.objects.count() == 1
    assert AuditEvent.objects.filter(action="document.uploaded").count() == 1
    # The refused upload's stored copy went with its rolled-back row.
    assert not list((enclave_var / "media").rglob("leave-copy*"))
