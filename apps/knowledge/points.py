"""The vector point of a chunk, written and read in this one module.

A point is a chunk's two vectors (dense and BM25) and its payload. Ingestion writes it
(`points_build`), access and label changes rewrite its access fields (`payload_sync`),
and search reads it back as a `Hit` (`hit_from_point`). The embedded text is built here
too (`embedding_text`), because a search that re-encodes a stored chunk must see the
text the ingestion encoded.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from apps.core.labels import label_or_restricted
from apps.knowledge.chunking import Chunk
from apps.knowledge.models import Document
from apps.knowledge.selectors import collection_group_ids
from apps.retrieval import sparse
from apps.retrieval import store as vector_store
from apps.retrieval.embeddings import embed
from apps.retrieval.models import EmbedderVersion
from apps.retrieval.store.protocol import Filter, Point, ScoredPoint

POINT_NAMESPACE = uuid.UUID("6b0f7d2e-4c1a-5e8b-9d3f-2a7c1e5b8f40")


def point_id(document_id: int, chunk_index: int, embedder: EmbedderVersion | None = None) -> str:
    """Derived, not random: re-ingesting a document rewrites exactly the same points.
    The packaged model's points keep the ids they had before embedder versions; another
    version's ids also derive from the version."""
    if embedder is None or embedder.is_base:
        return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{chunk_index}"))
    return str(uuid.uuid5(POINT_NAMESPACE, f"v{embedder.pk}:{document_id}:{chunk_index}"))


def embedding_text(*, title: str, section: str, text: str) -> str:
    """What the embedder and the BM25 encoder see: the titles travel with the chunk."""
    heading = title if not section or section == title else f"{title} › {section}"
    return f"{heading}\n{text}" if heading else text


def access_payload(*, document: Document, groups: list[int]) -> dict[str, object]:
    """The fields the search filter and the gate read; the only ones that change after
    ingestion (a relabel, a new grant)."""
    return {"label": document.label, "groups": groups, "collection_id": document.collection_id}


def points_build(
    *,
    chunks: Sequence[tuple[Document, list[int], Chunk]],
    versions: Sequence[EmbedderVersion],
) -> list[Point]:
    """Embed the chunks (dense and BM25), each with its document and the groups granted
    its collection, in one encode per embedder version in `versions` (the active one, and
    one a re-index is building), and wrap each in its point. The chunks may come from
    several documents: a batch of small ones shares the encode."""
    texts = [
        embedding_text(title=doc.title, section=c.section, text=c.text) for doc, _, c in chunks
    ]
    sparse_vectors = sparse.encode_documents(texts)
    return [
        Point(
            id=point_id(doc.pk, c.index, version),
            dense=d,
            sparse=s,
            payload={
                **access_payload(document=doc, groups=groups),
                "embedder": version.pk,
                "document_id": doc.pk,
                "version": doc.version,
                "chunk_index": c.index,
                "title": doc.title,
                "section": c.section,
                "text": c.text,
                "page": c.page,
                "char_start": c.char_start,
                "char_end": c.char_end,
            },
        )
        for version in versions
        for (doc, groups, c), d, s in zip(
            chunks, embed(texts, model_dir=version.model_path), sparse_vectors, strict=True
        )
    ]


def points_rebuild(stored: Sequence[ScoredPoint], *, version: EmbedderVersion) -> list[Point]:
    """Another version's points for a document's stored points (a re-index): the same
    payload and text, the dense vector from `version`'s model."""
    texts = [stored_text(p) for p in stored]
    dense = embed(texts, model_dir=version.model_path)
    return [
        Point(
            id=point_id(int(p.payload["document_id"]), int(p.payload["chunk_index"]), version),
            dense=d,
            sparse=s,
            payload={**p.payload, "embedder": version.pk},
        )
        for p, d, s in zip(stored, dense, sparse.encode_documents(texts), strict=True)
    ]


def payload_sync(*, collection_id: int | None = None, document_id: int | None = None) -> None:
    """Copy labels and granted groups from the database onto the points."""
    store = vector_store.get_store()
    docs = Document.objects.all()
    if collection_id is not None:
        docs = docs.filter(collection_id=collection_id)
    if document_id is not None:
        docs = docs.filter(pk=document_id)
    groups: dict[int, list[int]] = {}  # one grants query per collection, not per document
    for doc in docs.select_related("collection"):
        if doc.collection_id not in groups:
            groups[doc.collection_id] = collection_group_ids(doc.collection)
        store.set_payload(
            Filter.of(document_id=[doc.pk]),
            access_payload(document=doc, groups=groups[doc.collection_id]),
        )


@dataclass(frozen=True)
class Hit:
    chunk_id: str  # the point id
    document_id: int
    collection_id: int
    title: str  # document title
    section: str
    text: str
    page: int | None
    char_start: int
    char_end: int
    label: str  # from the payload (the gate re-reads the DB label later)
    score: float  # the fused score used for ordering
    version: int = 1  # the document's version (apps/knowledge/versions.py)


def hit_from_point(point: ScoredPoint, *, score: float) -> Hit:
    """A stored point as search hands it on; a missing or unknown label reads restricted."""
    payload = point.payload
    page = payload.get("page")
    return Hit(
        chunk_id=point.id,
        document_id=int(payload["document_id"]),
        collection_id=int(payload["collection_id"]),
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        text=str(payload.get("text", "")),
        page=int(page) if page is not None else None,
        char_start=int(payload.get("char_start", 0)),
        char_end=int(payload.get("char_end", 0)),
        label=label_or_restricted(payload.get("label")),
        score=float(score),
        version=int(payload.get("version") or 1),
    )


def stored_text(point: ScoredPoint) -> str:
    """The text the point's vectors were built from, rebuilt from its payload."""
    payload = point.payload
    return embedding_text(
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        text=str(payload.get("text", "")),
    )
