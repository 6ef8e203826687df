"""Reads of documents and collections, and the access rule every reader goes through:
which collections a user may read (DESIGN.md "Access") and each document's label now."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from apps.core.labels import label_or_restricted
from apps.core.roles import PERM_MANAGE_KNOWLEDGE, PERM_USE_ASSISTANT
from apps.knowledge.models import Collection, Document


def readable_collection_ids(user: AbstractBaseUser | AnonymousUser | None) -> list[int]:
    """Collections granted to any of the user's groups, read from the database now.

    An anonymous or inactive user, or one without groups, reads nothing. Being staff or
    superuser grants nothing here: access to documents is by group only (DESIGN.md).
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    pk = user.pk
    if pk is None:
        return []
    return sorted(set(Collection.objects.filter(groups__user__pk=pk).values_list("pk", flat=True)))


def document_labels(document_ids: Sequence[Any]) -> dict[Any, str]:
    """Each id's label from the database now; missing or unknown → restricted."""
    ints = [i for i in document_ids if isinstance(i, int) and not isinstance(i, bool)]
    found = dict(Document.objects.filter(pk__in=ints).values_list("pk", "label"))
    return {i: label_or_restricted(found.get(i)) for i in document_ids}


def collections_for_admin() -> QuerySet[Collection]:
    return Collection.objects.prefetch_related("groups").order_by("name")


def documents_in(collection: Collection, *, limit: int = 200) -> QuerySet[Document]:
    return (
        Document.objects.filter(collection=collection, superseded_at__isnull=True)
        .select_related("uploaded_by")
        .order_by("-created_at", "-id")[:limit]
    )


def document_status_row(doc: Document) -> dict[str, object]:
    return {
        "id": doc.pk,
        "title": doc.title,
        "name": doc.original_name,
        "status": doc.status,
        "status_display": doc.get_status_display(),
        "reason": doc.failure_reason,
        "label": doc.label,
        "chunks": doc.chunk_count,
        "mime_type": doc.mime_type,
        "size": doc.size,
        "uploaded_at": doc.created_at.isoformat(),
        "version": doc.version,
    }


def document_for_download(user: User, document_id: int) -> Document:
    """The document whose original this user may download, or 403/404.

    Knowledge admins may download any document; anyone else only one in a collection
    granted to one of their groups (the rule of citations and retrieval). A document the
    user may not read is a 404, so its existence is not given away; a user without either
    role gets 403 like on every other page.
    """
    if user.has_perm(PERM_MANAGE_KNOWLEDGE):
        found = Document.objects.filter(pk=document_id).first()
    elif user.has_perm(PERM_USE_ASSISTANT):
        found = Document.objects.filter(
            pk=document_id, collection_id__in=readable_collection_ids(user)
        ).first()
    else:
        raise PermissionDenied
    if found is None:
        raise Http404("This document is not available to you.")
    return found


def collection_group_ids(collection: Collection) -> list[int]:
    """The groups a collection is granted to, sorted: the `groups` field of its points."""
    return sorted(collection.groups.values_list("pk", flat=True))
