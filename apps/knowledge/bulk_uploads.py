"""A bulk load's uploads (`manage.py ingest_dir`): many files into one collection, stored
in groups of a few dozen, each group in one transaction.

Each file ends as `services.document_create` would store it alone: the same checks and
sentences, its own row, file and audit event. A group shares the queries: one for the
content already there, one for the names already there, and one insert for all its
new documents, where a file at a time costs eight statements (measured: half of a small
document's time in a bulk load went to storing it, README "Capacity", "Bulk loading").
A file under the name of a current document is a new version, and a group that has one
(or a name twice) is stored a file at a time by document_create, which knows versions; so
is a group whose insert meets the same content uploaded at the same moment elsewhere, so
that the file that lost gets its sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import IntegrityError, transaction

from apps.knowledge import services
from apps.knowledge.models import Collection, Document
from apps.knowledge.services import UploadRejected

logger = logging.getLogger(__name__)

Refused = list[tuple[int, UploadRejected]]


@dataclass(frozen=True)
class _Checked:
    index: int  # in the caller's `uploads`
    upload: File
    name: str
    size: int
    sha: str


def documents_create(
    *,
    collection: Collection,
    uploads: Sequence[File],
    user: AbstractBaseUser | None,
    label: str | None = None,
) -> tuple[list[Document], Refused]:
    """Store the uploads in one transaction: (the documents stored, in the uploads' order;
    (index in `uploads`, sentence) for each one refused, while the others go on).

    Nothing is sent to the queue: the caller sends what was stored once this returns
    (dispatch.ingest_enqueue_many); a document left unsent is queued all the same, and the
    stale-ingestion reaper sends it. If the transaction does not commit, the files stored
    in it are removed. The audit append lock is held until the commit, so keep the
    groups small.
    """
    stored: list[tuple[int, Document]] = []
    refused: Refused = []
    try:
        with transaction.atomic():
            fresh = _new_content(collection, _checked(uploads, label, refused), refused)
            together = _all_new_names(collection, fresh) and _insert_together(
                collection, fresh, user=user, label=label, stored=stored
            )
            if not together:
                _one_at_a_time(
                    collection, fresh, user=user, label=label, stored=stored, refused=refused
                )
    except BaseException:
        _remove_files([doc for _, doc in stored])
        raise
    refused.sort(key=lambda item: item[0])
    return [doc for _, doc in sorted(stored, key=lambda item: item[0])], refused


def _checked(uploads: Sequence[File], label: str | None, refused: Refused) -> list[_Checked]:
    checked = []
    for index, upload in enumerate(uploads):
        try:
            name, size, sha = services.upload_checked(upload=upload, label=label)
        except UploadRejected as err:
            refused.append((index, err))
            continue
        checked.append(_Checked(index=index, upload=upload, name=name, size=size, sha=sha))
    return checked


def _new_content(
    collection: Collection, checked: list[_Checked], refused: Refused
) -> list[_Checked]:
    """Those whose content is neither a current document's nor an earlier file's of the
    group; the others are refused as document_create refuses a duplicate."""
    titles = dict(
        Document.objects.filter(
            collection=collection,
            sha256__in=[c.sha for c in checked],
            superseded_at__isnull=True,
        ).values_list("sha256", "title")
    )
    fresh = []
    for item in checked:
        if item.sha in titles:
            refused.append(
                (
                    item.index,
                    services.duplicate_of(
                        collection=collection, name=item.name, title=titles[item.sha]
                    ),
                )
            )
            continue
        titles[item.sha] = services.title_for(item.name)
        fresh.append(item)
    return fresh


def _all_new_names(collection: Collection, fresh: list[_Checked]) -> bool:
    """No name twice, and none a current document's (each would be a new version)."""
    names = [item.name for item in fresh]
    return len(set(names)) == len(names) and not (
        Document.objects.filter(
            collection=collection, original_name__in=names, superseded_at__isnull=True
        ).exists()
    )


def _insert_together(
    collection: Collection,
    fresh: list[_Checked],
    *,
    user: AbstractBaseUser | None,
    label: str | None,
    stored: list[tuple[int, Document]],
) -> bool:
    """Each a first version, in one insert; False, with nothing kept, if the same content
    arrived elsewhere meanwhile (the unique constraint)."""
    docs: list[Document] = []
    try:
        for item in fresh:
            doc = Document(
                collection=collection,
                title=services.title_for(item.name),
                original_name=item.name,
                sha256=item.sha,
                size=item.size,
                label=label or collection.default_label,
                uploaded_by=services.uploader(user),  # type: ignore[misc]  # AUTH_USER_MODEL is auth.User
            )
            doc.file.save(Path(item.name).name, item.upload, save=False)
            docs.append(doc)
        with transaction.atomic():  # a savepoint: the group's transaction stays usable
            Document.objects.bulk_create(docs)
    except IntegrityError as err:
        _remove_files(docs)
        if services.constraint_of(err) != services.DUPLICATE_CONSTRAINT:
            raise
        return False
    except BaseException:
        _remove_files(docs)
        raise
    stored += [(item.index, doc) for item, doc in zip(fresh, docs, strict=True)]
    for doc in docs:
        services.audit_uploaded(document=doc, user=user)
    return True


def _one_at_a_time(
    collection: Collection,
    fresh: list[_Checked],
    *,
    user: AbstractBaseUser | None,
    label: str | None,
    stored: list[tuple[int, Document]],
    refused: Refused,
) -> None:
    for item in fresh:
        item.upload.seek(0)
        try:
            doc, _ = services.document_create(
                collection=collection, upload=item.upload, user=user, label=label, enqueue=False
            )
        except UploadRejected as err:
            refused.append((item.index, err))
            continue
        stored.append((item.index, doc))


def _remove_files(docs: Sequence[Document]) -> None:
    for doc in docs:
        if not doc.file.name:
            continue
        try:
            doc.file.storage.delete(doc.file.name)
        except OSError:
            logger.exception("could not remove %s after a failed upload", doc.file.name)
