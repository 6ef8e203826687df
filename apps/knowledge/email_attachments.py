"""An e-mail's attachments become documents of their own, linked to the message.

Each inherits the message's collection, label and uploader, is titled "NAME (attachment
of “SUBJECT”)" so a citation says where it came from, and is ingested like any upload.
Running twice (a retried ingestion) adds nothing: an attachment already there, by
content, is skipped. A chain of messages attached to messages stops at MAX_DEPTH.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction

from apps.audit.services import audit_record
from apps.knowledge.models import Document
from apps.knowledge.parsers import ParsedDocument
from apps.knowledge.parsers.mail import MAX_DEPTH
from apps.knowledge.services import UploadRejected, document_create

logger = logging.getLogger(__name__)


def _depth(document: Document) -> int:
    """How many messages this document sits inside (0 for an upload)."""
    depth = 0
    parent_id = document.parent_id
    while parent_id is not None and depth <= MAX_DEPTH:
        depth += 1
        parent_id = (
            Document.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
        )
    return depth


def attachment_title(name: str, message: str) -> str:
    return f"{Path(name).name} (attachment of “{message}”)"[:500]


def attachments_create(*, document: Document, parsed: ParsedDocument) -> list[Document]:
    """Create (and queue) a document per attachment of `document`; returns the new ones."""
    if not parsed.attachments:
        return []
    if _depth(document) + 1 > MAX_DEPTH:
        logger.warning(
            "document %s: attachments past depth %s not ingested", document.pk, MAX_DEPTH
        )
        audit_record(
            actor=None,
            action="document.attachments_skipped",
            target=document,
            details={"document_id": document.pk, "reason": f"nested past {MAX_DEPTH} levels"},
        )
        return []
    created: list[Document] = []
    for attachment in parsed.attachments:
        name = Path(attachment.name).name or "attachment"
        try:
            with transaction.atomic():
                child, _ = document_create(
                    collection=document.collection,
                    upload=ContentFile(attachment.data, name=name),
                    user=document.uploaded_by,
                    label=document.label,
                    title=attachment_title(name, parsed.title or document.title),
                )
                Document.objects.filter(pk=child.pk).update(parent=document)
        except UploadRejected as err:
            # Already in the collection (a retry, or the same file sent twice): the copy
            # there is searchable; nothing to add.
            logger.info("attachment %s of document %s skipped: %s", name, document.pk, err)
            continue
        created.append(child)
    return created
