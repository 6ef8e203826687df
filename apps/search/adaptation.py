"""The corpus an embedder is adapted on: the indexed chunks themselves, read back from the
store (the text the embedder will have to find), one copy per chunk.

Used by `manage.py adapt_embedder` (the product) and `evaluate_retrieval --adapt` (the
measurement), so both train on exactly what ingestion stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from apps.retrieval import store as vector_store
from apps.retrieval.adapt import Passage
from apps.retrieval.store.protocol import Filter

PAGE = 512


def stored_passages(collection_ids: Sequence[int]) -> Iterator[Passage]:
    """Every chunk of the collections, once (whichever embedder version stored it)."""
    if not collection_ids:
        return
    store = vector_store.get_store()
    flt = Filter.of(collection_id=list(collection_ids))
    seen: set[tuple[int, int]] = set()
    offset: str | None = None
    while True:
        points, offset = store.scroll(flt, limit=PAGE, offset=offset)
        for p in points:
            key = (int(p.payload["document_id"]), int(p.payload.get("chunk_index", 0)))
            if key in seen:
                continue
            seen.add(key)
            yield Passage(
                title=str(p.payload.get("title", "")),
                section=str(p.payload.get("section", "")),
                text=str(p.payload.get("text", "")),
            )
        if offset is None:
            return
