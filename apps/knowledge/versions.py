"""Versions of a document: a file uploaded under the name of a current document in the
same collection becomes its next version (README "Ingestion", "Versions").

Each version is its own Document row with its own points; `first_version` ties a lineage
together and `version` counts up. The swap is one commit: the moment version n+1 is
marked indexed, search hides every older version of its lineage, and until then it
hides the new version's points (`hidden_ids`, read from the database on every search).
Only then are the older versions' points removed and the rows marked `superseded_at`
(`retire_older`), so there is no moment without an answer and none where search hands
on both. A version that fails leaves the current one as it
was. Superseded rows keep their text and file: old citations still open, and admins can
download any version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.audit.services import audit_record
from apps.knowledge.models import Collection, Document
from apps.retrieval import store as vector_store
from apps.retrieval.store.protocol import Filter, StoreError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NextVersion:
    version: int
    first_version: Document | None  # None: a new lineage
    previous: Document | None  # the current version it replaces


def next_version(*, collection: Collection, name: str) -> NextVersion:
    """Which version an upload named `name` into `collection` would be."""
    current = (
        Document.objects.filter(
            collection=collection, original_name=name, superseded_at__isnull=True
        )
        .order_by("-version", "-pk")
        .first()
    )
    if current is None:
        return NextVersion(version=1, first_version=None, previous=None)
    root = current.first_version or current
    top = lineage(root).order_by("-version").values_list("version", flat=True).first() or 1
    return NextVersion(version=top + 1, first_version=root, previous=current)


def lineage(document: Document) -> QuerySet[Document]:
    """Every version of the document's lineage, the newest first."""
    root_id = document.first_version_id or document.pk
    return Document.objects.filter(Q(pk=root_id) | Q(first_version_id=root_id)).order_by(
        "-version", "-pk"
    )


def _in_lineage(root: Coalesce) -> Q:
    return Q(pk=root) | Q(first_version_id=root)


def _newer_indexed() -> Exists:
    root = Coalesce(OuterRef("first_version_id"), OuterRef("pk"))
    return Exists(
        Document.objects.filter(
            first_version_id=root,
            version__gt=OuterRef("version"),
            status=Document.Status.INDEXED,
        )
    )


def _older_answering() -> Exists:
    root = Coalesce(OuterRef("first_version_id"), OuterRef("pk"))
    return Exists(
        Document.objects.filter(_in_lineage(root)).filter(
            version__lt=OuterRef("version"),
            status=Document.Status.INDEXED,
            superseded_at__isnull=True,
        )
    )


def hidden_ids(document_ids: Iterable[int]) -> set[int]:
    """Of these documents, the ones search must not hand on: a superseded version, one
    older than an indexed version of its lineage (the swap has committed, its points are
    not removed yet), and one still being ingested while an older version answers (its
    first points are in the store before it is indexed)."""
    ids = [i for i in set(document_ids) if isinstance(i, int)]
    if not ids:
        return set()
    return set(
        Document.objects.filter(pk__in=ids)
        .filter(
            Q(superseded_at__isnull=False)
            | _newer_indexed()
            | (~Q(status=Document.Status.INDEXED) & _older_answering())
        )
        .values_list("pk", flat=True)
    )


def retire_older(*, document_id: int) -> list[int]:
    """After version n is indexed: remove the points of every older version, then mark
    them superseded, with one audit event each. Returns the ids retired.

    If the store is down the rows stay unmarked and search keeps hiding them; the next
    version, a re-ingest or the reaper's run of `retire_pending` finishes the job.
    """
    doc = Document.objects.filter(pk=document_id, status=Document.Status.INDEXED).first()
    if doc is None or doc.first_version_id is None:
        return []  # a first version has nothing older
    # One still being ingested is left alone: it is hidden once it finishes (a newer
    # version is indexed), and retire_pending retires it then.
    older = lineage(doc).filter(
        superseded_at__isnull=True,
        version__lt=doc.version,
        status__in=[Document.Status.INDEXED, Document.Status.FAILED],
    )
    retired: list[int] = []
    for old in older:
        try:
            vector_store.get_store().delete(Filter.of(document_id=[old.pk]))
        except StoreError as err:
            logger.warning(
                "could not remove the points of version %s of %s: %s", old.version, old.pk, err
            )
            continue
        with transaction.atomic():
            marked = Document.objects.filter(pk=old.pk, superseded_at__isnull=True).update(
                superseded_at=timezone.now(), chunk_count=0
            )
            if not marked:
                continue
            audit_record(
                actor=None,
                action="document.version_superseded",
                target=old,
                details={
                    "document_id": old.pk,
                    "version": old.version,
                    "superseded_by": doc.pk,
                    "superseded_by_version": doc.version,
                    "collection_id": old.collection_id,
                    "sha256": old.sha256,
                },
            )
        retired.append(old.pk)
    return retired


def retire_pending() -> list[int]:
    """Finish every swap whose old points could not be removed at the time."""
    stuck = Document.objects.filter(superseded_at__isnull=True).filter(_newer_indexed())
    newest = {d.first_version_id or d.pk for d in stuck}
    done: list[int] = []
    for root_id in newest:
        top = (
            Document.objects.filter(Q(pk=root_id) | Q(first_version_id=root_id))
            .filter(status=Document.Status.INDEXED)
            .order_by("-version")
            .first()
        )
        if top is not None:
            done.extend(retire_older(document_id=top.pk))
    return done


def versions_of(document: Document) -> list[Document]:
    """The lineage as the versions page lists it: who, when, SHA-256, newest first."""
    return list(lineage(document).select_related("uploaded_by"))
