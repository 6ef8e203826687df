"""BM25 sparse vectors for the keyword half of hybrid search, one encoder for both backends.

qdrant-edge's `Bm25` runs on its own (no server, no model files). Documents carry
term-frequency weights saturated by k/b; the inverse document frequency is not baked in
here but applied by the collection's IDF modifier on the "bm25" sparse vector, so it
always reflects the points actually stored. Queries weigh every distinct term 1.0.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from apps.retrieval.store.protocol import SparseVector

# The Rust encoder is not documented as thread-safe; the web process may encode queries
# from several threads, and encoding is microseconds, so one lock costs nothing.
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _encoder() -> Any:
    import qdrant_edge  # heavy: the Rust engine, loaded with the first text to encode

    # Defaults: English stop words and stemmer, lowercase, k=1.2, b=0.75, avg_len=256
    # tokens (close to our chunk size). Changing any of them changes the term ids or
    # weights, which means re-ingesting everything, so they are fixed here on purpose.
    return qdrant_edge.Bm25()


def _convert(vector: Any) -> SparseVector:
    return SparseVector(indices=list(vector.indices), values=list(vector.values))


def encode_documents(texts: Sequence[str]) -> list[SparseVector]:
    encoder = _encoder()
    with _lock:
        return [_convert(encoder.embed_document(text)) for text in texts]


def encode_query(text: str) -> SparseVector:
    encoder = _encoder()
    with _lock:
        return _convert(encoder.embed_query(text))
