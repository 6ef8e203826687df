"""Synced folders: a real folder, the real worker and store, and two syncs at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Collection, Document, Source, SyncRun
from apps.knowledge.sync import source_sync, sources_due
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter
from tests.conftest import wait_for_documents

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]


@pytest.fixture
def admin_user() -> User:
    user = User.objects.create_user("sadmin", password="pw-sadmin-1")
    user.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    return user


@pytest.fixture
def collection(admin_user: User) -> Collection:
    return services.collection_create(
        name="Share", actor=admin_user, default_label=Label.INTERNAL, groups=[]
    )


@pytest.fixture
def folder(enclave_env, tmp_path, settings) -> Path:
    """A folder inside SOURCE_ROOTS as the worker sees it (VAR_DIR/sources)."""
    root = Path(enclave_env["VAR_DIR"]) / "sources"
    settings.SOURCE_ROOTS = [str(root)]
    path = root / tmp_path.name
    path.mkdir(parents=True)
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {path.stem}\n\n{text}\n", encoding="utf-8")


@pytest.fixture
def source(folder: Path, collection: Collection) -> Source:
    _write(folder / "travel.md", "Trains are booked through the travel desk two weeks ahead.")
    _write(folder / "parking.txt", "Parking permits are renewed every January at reception.")
    _write(folder / "hr" / "salaries.md", "Salary bands are reviewed each spring by the board.")
    (folder / ".hidden.md").write_text("not synced", encoding="utf-8")
    (folder / "outside.md").symlink_to("/etc/hostname")
    return Source.objects.create(
        name="share",
        collection=collection,
        path=str(folder),
        label_rules=[{"folder": "hr", "label": Label.RESTRICTED}],
    )


def _current(source: Source) -> dict[str, Document]:
    docs = Document.objects.filter(source=source, superseded_at__isnull=True)
    return {d.original_name: d for d in docs}


def _settle(source: Source) -> dict[str, Document]:
    ids = [d.pk for d in _current(source).values()]
    wait_for_documents(ids)
    return _current(source)


def test_sync_adds_updates_removes_and_never_reembeds_unchanged(admin_user, source, folder):
    run = source_sync(source=source, trigger=SyncRun.Trigger.COMMAND, actor=admin_user)
    assert (run.status, run.added, run.updated, run.removed) == ("done", 3, 0, 0)
    assert run.failures == [
        {"path": "outside.md", "reason": "A symbolic link; links are not followed."}
    ]
    docs = _settle(source)
    assert set(docs) == {"travel.md", "parking.txt", "hr/salaries.md"}
    assert all(d.status == Document.Status.INDEXED for d in docs.values())
    assert docs["hr/salaries.md"].label == Label.RESTRICTED  # the folder's rule
    assert docs["travel.md"].label == Label.INTERNAL  # the collection's default
    indexed_events = AuditEvent.objects.filter(action="document.indexed").count()

    again = source_sync(source=source, trigger=SyncRun.Trigger.COMMAND)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 3)
    assert _current(source).keys() == docs.keys()
    assert {d.pk: d.indexed_at for d in _current(source).values()} == {
        d.pk: d.indexed_at for d in docs.values()
    }

    _write(folder / "travel.md", "Trains are booked through the new travel portal.")
    (folder / "parking.txt").unlink()
    _write(folder / "it" / "laptops.md", "Laptops are replaced every four years.")
    (folder / "big.md").write_bytes(b"x" * (settings.UPLOAD_MAX_BYTES + 1))
    third = source_sync(source=source, trigger=SyncRun.Trigger.SCHEDULE)
    assert (third.added, third.updated, third.removed, third.unchanged) == (1, 1, 1, 1)
    assert {f["path"] for f in third.failures} == {"outside.md", "big.md"}
    assert "the limit is" in next(f["reason"] for f in third.failures if f["path"] == "big.md")
    after = _settle(source)
    assert set(after) == {"travel.md", "hr/salaries.md", "it/laptops.md"}
    travel = after["travel.md"]
    assert travel.version == 2 and travel.first_version_id == docs["travel.md"].pk
    assert "portal" in travel.text
    old = Document.objects.get(pk=docs["travel.md"].pk)
    assert old.superseded_at is not None
    assert get_store().count(Filter.of(document_id=[old.pk])) == 0
    gone = docs["parking.txt"].pk
    assert not Document.objects.filter(pk=gone).exists()
    assert get_store().count(Filter.of(document_id=[gone])) == 0
    # Only the changed and the new file were embedded again.
    assert AuditEvent.objects.filter(action="document.indexed").count() == indexed_events + 2
    synced = [e.details for e in AuditEvent.objects.filter(action="source.synced").order_by("pk")]
    assert [(d["added"], d["updated"], d["removed"], d["failed"]) for d in synced] == [
        (3, 0, 0, 1),
        (0, 0, 0, 1),
        (1, 1, 1, 2),
    ]


def test_two_syncs_at_once_one_waits_and_nothing_is_doubled(source):
    runs: list[SyncRun] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def sync() -> None:
        try:
            start.wait()
            runs.append(source_sync(source=source, trigger=SyncRun.Trigger.COMMAND))
        except BaseException as err:  # reported below
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    first, second = sorted(runs, key=lambda r: r.started_at)
    assert second.started_at >= first.finished_at  # the second waited for the lock
    assert (first.added, second.added, second.unchanged) == (3, 0, 3)
    assert Document.objects.filter(source=source).count() == 3
    _settle(source)


def test_sync_page_sync_now_runs_on_the_worker_and_shows_the_report(
    client, admin_user, collection, folder, source
):
    client.force_login(admin_user)
    refused = client.post(
        reverse("knowledge:sources"),
        {"name": "etc", "collection": collection.pk, "path": "/etc", "interval_minutes": 60},
    )
    assert refused.status_code == 400
    assert "is not inside an allowed folder" in refused.content.decode()
    assert not Source.objects.filter(name="etc").exists()
    bad_rule = client.post(
        reverse("knowledge:sources"),
        {
            "name": "more",
            "collection": collection.pk,
            "path": str(folder),
            "interval_minutes": 60,
            "label_rules": "hr = secret",
        },
    )
    assert bad_rule.status_code == 400 and "folder = label" in bad_rule.content.decode()

    resp = client.post(reverse("knowledge:source_sync", args=[source.pk]))
    assert resp.status_code == 302
    deadline = timezone.now() + timedelta(seconds=60)
    while not SyncRun.objects.filter(source=source, status="done").exists():
        assert timezone.now() < deadline, "the worker did not run the sync"
    run = SyncRun.objects.get(source=source)
    assert run.trigger == "admin" and run.started_by == admin_user and run.added == 3
    page = client.get(reverse("knowledge:source_detail", args=[source.pk])).content.decode()
    assert "outside.md" in page and "links are not followed" in page
    assert AuditEvent.objects.filter(action="source.sync_requested").exists()
    _settle(source)

    employee = User.objects.create_user("semp", password="pw-semp-123")
    employee.groups.add(Group.objects.get(name=EMPLOYEE))
    client.force_login(employee)
    assert client.get(reverse("knowledge:sources")).status_code == 403
    assert client.post(reverse("knowledge:source_sync", args=[source.pk])).status_code == 403


def test_sync_source_command_prints_the_report(source):
    out, err = StringIO(), StringIO()
    call_command("sync_source", "share", stdout=out, stderr=err)
    assert "3 added" in out.getvalue() and "failed outside.md" in out.getvalue()
    assert "sync share" in err.getvalue()  # the progress bar
    with pytest.raises(CommandError, match="no source named 'nope' \\(sources: share\\)"):
        call_command("sync_source", "nope")
    _settle(source)


def test_a_missing_folder_fails_the_sync_with_a_reason_and_removes_nothing(source, folder):
    source_sync(source=source, trigger=SyncRun.Trigger.COMMAND)
    kept = set(_settle(source))
    renamed = folder.with_name(folder.name + "-unmounted")
    folder.rename(renamed)
    run = source_sync(source=source, trigger=SyncRun.Trigger.SCHEDULE)
    assert run.status == "failed" and "is not a directory" in run.error
    assert set(_current(source)) == kept


def test_sources_due_follow_each_interval(source):
    assert sources_due() == [source]
    Source.objects.filter(pk=source.pk).update(last_synced_at=timezone.now())
    assert sources_due() == []
    Source.objects.filter(pk=source.pk).update(
        last_synced_at=timezone.now() - timedelta(minutes=source.interval_minutes + 1)
    )
    assert [s.pk for s in sources_due()] == [source.pk]
