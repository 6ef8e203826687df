"""A bulk load's groups of uploads (apps/knowledge/bulk_uploads.py) store each file as
document_create stores it alone, whichever way the group goes: one insert for all, or a
file at a time where there are versions or a race."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from django.core.files import File

from apps.audit.models import AuditEvent
from apps.knowledge import bulk_uploads, services
from apps.knowledge.models import Collection, Document

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def collection() -> Collection:
    return services.collection_create(name="Group", actor=None)


def _write(directory: Path, names_and_texts: list[tuple[str, str]]) -> list[Path]:
    paths = []
    for name, text in names_and_texts:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return paths


def _create(collection: Collection, paths: list[Path], names: list[str] | None = None):  # noqa: ANN202
    with ExitStack() as stack:
        uploads = [
            File(stack.enter_context(p.open("rb")), name=(names[i] if names else p.name))
            for i, p in enumerate(paths)
        ]
        return bulk_uploads.documents_create(collection=collection, uploads=uploads, user=None)


def _uploaded(doc: Document) -> dict:
    [event] = AuditEvent.objects.filter(
        action="document.uploaded", target_id=str(doc.pk), target_type="knowledge.document"
    )
    return event.details


def test_a_group_of_new_files_is_stored_as_each_alone_would_be(collection, fixture_dir):
    alone_path, *group = _write(
        fixture_dir,
        [("alone.txt", "stored alone")] + [(f"Note_{n}.txt", f"note {n}") for n in range(4)],
    )
    with alone_path.open("rb") as fh:
        alone, _ = services.document_create(
            collection=collection, upload=File(fh, name=alone_path.name), user=None, enqueue=False
        )
    stored, refused = _create(collection, group)
    assert refused == []
    assert [d.original_name for d in stored] == [p.name for p in group]
    for doc, path in zip(stored, group, strict=True):
        doc.refresh_from_db()
        assert doc.title == path.stem.replace("_", " ")
        assert (doc.status, doc.version, doc.first_version_id) == ("queued", 1, None)
        assert doc.label == collection.default_label
        assert Path(doc.file.path).read_bytes() == path.read_bytes()
        assert doc.size == path.stat().st_size
        # The same event a document stored alone gets, key for key.
        details = _uploaded(doc)
        assert details.keys() == _uploaded(alone).keys()
        assert (details["document_id"], details["sha256"], details["name"]) == (
            doc.pk,
            doc.sha256,
            path.name,
        )


def test_content_already_there_or_twice_in_the_group_is_refused_with_the_sentence(
    collection, fixture_dir
):
    first, again, twin_a, twin_b, fine = _write(
        fixture_dir,
        [
            ("first.txt", "the same words"),
            ("again.txt", "the same words"),
            ("twin_a.txt", "twins"),
            ("twin_b.txt", "twins"),
            ("fine.txt", "something else"),
        ],
    )
    _create(collection, [first])
    stored, refused = _create(collection, [again, twin_a, twin_b, fine])
    assert [d.original_name for d in stored] == ["twin_a.txt", "fine.txt"]
    assert [(i, str(err)) for i, err in refused] == [
        (0, "again.txt is already in Group as “first” (same content)."),
        (2, "twin_b.txt is already in Group as “twin a” (same content)."),
    ]
    assert not Document.objects.filter(original_name__in=["again.txt", "twin_b.txt"]).exists()


def test_a_name_already_current_or_twice_in_the_group_becomes_the_next_version(
    collection, fixture_dir
):
    [old] = _write(fixture_dir, [("policy.txt", "version one")])
    [first] = _create(collection, [old])[0]
    Document.objects.filter(pk=first.pk).update(label="confidential")
    paths = _write(
        fixture_dir,
        [("v2/policy.txt", "version two"), ("new.txt", "new"), ("v2/new.txt", "new again")],
    )
    stored, refused = _create(collection, paths)
    assert refused == []
    by_text = {Path(d.file.path).read_text(): d for d in stored}
    assert (by_text["version two"].version, by_text["version two"].first_version_id) == (
        2,
        first.pk,
    )
    # A new version keeps its lineage's label, as an upload alone does.
    assert by_text["version two"].label == "confidential"
    assert (by_text["new"].version, by_text["new again"].version) == (1, 2)
    assert by_text["new again"].first_version_id == by_text["new"].pk
    assert _uploaded(by_text["version two"])["replaces"] == first.pk


def test_content_that_arrives_elsewhere_before_the_insert_is_refused_and_leaves_no_file(
    collection, fixture_dir, settings
):
    media = Path(settings.MEDIA_ROOT)
    raced, other = _write(fixture_dir, [("raced.txt", "raced"), ("other.txt", "other")])
    checked = []
    with ExitStack() as stack:
        uploads = [File(stack.enter_context(p.open("rb")), name=p.name) for p in (raced, other)]
        for index, upload in enumerate(uploads):
            name, size, sha = services.upload_checked(upload=upload, label=None)
            checked.append(bulk_uploads._Checked(index, upload, name, size, sha))
        # Another upload of the same content commits after the group's check.
        with raced.open("rb") as fh:
            services.document_create(
                collection=collection,
                upload=File(fh, name="elsewhere.txt"),
                user=None,
                enqueue=False,
            )
        files_before = {p for p in media.rglob("*") if p.is_file()}
        stored: list = []
        assert not bulk_uploads._insert_together(
            collection, checked, user=None, label=None, stored=stored
        )
        assert stored == []
        assert {p for p in media.rglob("*") if p.is_file()} == files_before
        # The group then goes a file at a time, and the one that lost gets its sentence.
        refused: list = []
        bulk_uploads._one_at_a_time(
            collection, checked, user=None, label=None, stored=stored, refused=refused
        )
    assert [(i, str(err)) for i, err in refused] == [
        (0, "raced.txt is already in Group as “elsewhere” (same content).")
    ]
    assert [doc.original_name for _, doc in stored] == ["other.txt"]
