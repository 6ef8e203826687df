"""retrieve(user, question): which chunks may this user see for this question.

The ONLY search path for chat, citations, titles and counts. The user's readable
collections become a payload filter inside every store query (never a filter applied
to results afterwards); a user who can read nothing gets nothing and no query is sent.
This module is the one that sends search queries to the store: a hybrid ranking gets
its candidate lists through `Candidates`, which carries the filter.

Hybrid search runs two filtered queries, dense (the embedding model) and sparse (BM25),
and fuses them (apps/search/fusion.py: the weighted fusion and heading match the dev sets
chose).

`relevant` answers "did search find anything worth answering from": the best dense
cosine similarity among the readable candidates against RETRIEVAL_MIN_SCORE. Fused scores
are relative (normalised per query), so only the dense cosine has a scale that means the
same thing from one question to the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from apps.knowledge.points import Hit, hit_from_point
from apps.knowledge.selectors import readable_collection_ids
from apps.knowledge.versions import hidden_ids
from apps.retrieval import sparse
from apps.retrieval import store as vector_store
from apps.retrieval.embeddings import embed_query
from apps.retrieval.store.protocol import Filter, ScoredPoint, SparseVector, VectorStore
from apps.retrieval.versions import active_version
from apps.search.fusion import Fusion, Ranked, default_fusion

logger = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "sparse")
MAX_K = 1000


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    collection_ids: list[int]  # what the user could read; [] means no query was sent
    mode: str  # "hybrid" | "dense" | "sparse"
    relevant: bool  # False when nothing readable, or best score under the tuned threshold


class Candidates:
    """One question's store queries for one reader, each with the reader's filter.

    The question is embedded and BM25-encoded on first use only, so a sparse search
    never loads the embedding model.
    """

    def __init__(
        self, *, store: VectorStore, flt: Filter, question: str, model_dir: str | None = None
    ) -> None:
        self._store = store
        self._flt = flt
        self.question = question
        self._model_dir = model_dir  # the active embedder version's model

    @cached_property
    def vector(self) -> list[float]:
        return embed_query(self.question, model_dir=self._model_dir)

    @cached_property
    def keywords(self) -> SparseVector:
        return sparse.encode_query(self.question)

    def dense(self, *, limit: int) -> list[ScoredPoint]:
        return self._store.query_dense(self.vector, flt=self._flt, limit=limit)

    def sparse(self, *, limit: int, query: SparseVector | None = None) -> list[ScoredPoint]:
        """The question's own terms, or `query` (an evaluation's expanded query)."""
        vector = self.keywords if query is None else query
        return self._store.query_sparse(vector, flt=self._flt, limit=limit)

    def lists(self, *, limit: int) -> tuple[list[ScoredPoint], list[ScoredPoint]]:
        """The dense and the keyword candidates; no keyword query for a question whose
        words are all unknown to BM25 (stop words only, ...)."""
        dense = self.dense(limit=limit)
        keyword = self.sparse(limit=limit) if self.keywords.indices else []
        return dense, keyword

    def store_rrf(self, *, limit: int, prefetch_limit: int, rrf_k: int) -> list[ScoredPoint]:
        """The store's own reciprocal rank fusion in one round trip (evaluation only)."""
        return self._store.query_hybrid(
            self.vector,
            self.keywords,
            flt=self._flt,
            limit=limit,
            prefetch_limit=prefetch_limit,
            rrf_k=rrf_k,
        )


# A hybrid ranking: (candidates, k) → points best first, and the best dense cosine.
HybridRank = Callable[[Candidates, int], tuple[Ranked, float | None]]


def weighted(fusion: Fusion) -> HybridRank:
    """The product's hybrid ranking: both lists, fused by weighted score fusion, plus the
    heading match."""

    ranking = fusion.ranking()

    def rank(candidates: Candidates, k: int) -> tuple[Ranked, float | None]:
        dense, keyword = candidates.lists(limit=max(k, fusion.candidates))
        best_dense = dense[0].score if dense else None
        return ranking.rank(dense, keyword, candidates.question), best_dense

    return rank


def retrieve(
    *,
    user: AbstractBaseUser | AnonymousUser | None,
    question: str,
    k: int | None = None,
    mode: str | None = None,
) -> Retrieval:
    """The chunks this user may read that best answer `question`, best first.

    Raises the store's StoreUnavailable / StoreError when search cannot run.
    """
    return retrieve_with(
        user=user, question=question, k=k, mode=mode, hybrid=weighted(default_fusion())
    )


def candidates_for(collection_ids: list[int], question: str) -> Candidates:
    """The store queries for a reader of `collection_ids`: the one place that builds
    the filter every search query carries. Only the active embedder version's points
    match it, and the question is embedded by that version's model: a query never mixes
    two models' vectors (apps/retrieval/versions.py)."""
    active = active_version()
    return Candidates(
        store=vector_store.get_store(),
        flt=Filter.of(collection_id=collection_ids, embedder=[active.pk]),
        question=question,
        model_dir=active.model_path,
    )


def retrieve_with(
    *,
    user: AbstractBaseUser | AnonymousUser | None,
    question: str,
    k: int | None,
    mode: str | None,
    hybrid: HybridRank,
) -> Retrieval:
    """retrieve() with another hybrid ranking: evaluate_retrieval compares variants."""
    k = settings.RETRIEVAL_K if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    mode = mode or settings.RETRIEVAL_MODE
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")

    collection_ids = readable_collection_ids(user)
    if not collection_ids:
        # Fail closed: no readable collection, no query at all (not an empty filter).
        return Retrieval(hits=[], collection_ids=[], mode=mode, relevant=False)
    question = (question or "").strip()
    if not question:
        return Retrieval(hits=[], collection_ids=collection_ids, mode=mode, relevant=False)

    candidates = candidates_for(collection_ids, question)
    scored: Ranked
    best_dense: float | None
    if mode == "sparse":
        scored = [(p, p.score) for p in candidates.sparse(limit=k)]
        # BM25 scores have no fixed scale; any keyword match counts as relevant here.
        best_dense = None
    elif mode == "dense":
        found = candidates.dense(limit=k)
        scored = [(p, p.score) for p in found]
        best_dense = found[0].score if found else None
    else:
        scored, best_dense = hybrid(candidates, k)

    readable = set(collection_ids)
    hits = []
    for p, score in scored[:k]:
        hit = hit_from_point(p, score=score)
        if hit.collection_id not in readable:
            # Unreachable unless a backend ignores its filter; never hand such a chunk on.
            logger.error("store returned point %s outside the query's filter", p.id)
            continue
        hits.append(hit)
    # A version swap is one commit in the database; the older version's points may still
    # be in the store for a moment after it, and are never handed on (versions.py).
    hidden = hidden_ids(h.document_id for h in hits)
    if hidden:
        hits = [h for h in hits if h.document_id not in hidden]
    if best_dense is None:
        relevant = bool(hits)
    else:
        relevant = bool(hits) and best_dense >= settings.RETRIEVAL_MIN_SCORE
    return Retrieval(hits=hits, collection_ids=collection_ids, mode=mode, relevant=relevant)


__all__ = [
    "MODES",
    "Candidates",
    "Hit",
    "HybridRank",
    "Retrieval",
    "candidates_for",
    "retrieve",
    "retrieve_with",
    "weighted",
]
