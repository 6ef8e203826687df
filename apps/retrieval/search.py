"""retrieve(user, question): which chunks may this user see for this question.

The ONLY search path for chat, citations, titles and counts. The user's readable
collections become a payload filter inside every store query (never a filter applied
to results afterwards); a user who can read nothing gets nothing and no query is sent.

Hybrid search runs two filtered queries, dense (the embedding model) and sparse (BM25),
and fuses them here. The fusion and its constants were chosen by measurement on the
dev set (README, "Retrieval"): a weighted sum of the two score lists, each min-max
normalised over its own candidates. Qdrant's RRF (`query_hybrid`) and a dense-first
ranking with sparse rescue remain selectable for comparison (`Fusion.method`).

`relevant` answers "did search find anything worth answering from": the best dense
cosine similarity among the readable candidates against RETRIEVAL_MIN_SCORE. Fused scores
are relative (normalised per query, or rank-based), so only the dense cosine has a scale
that means the same thing from one question to the next.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.knowledge.selectors import readable_collection_ids
from apps.retrieval.store.protocol import Filter, ScoredPoint

logger = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "sparse")
FUSION_METHODS = ("weighted", "rrf", "rrf-store", "rescue")
NORMALISATIONS = ("minmax", "max")
MAX_K = 1000


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


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    collection_ids: list[int]  # what the user could read; [] means no query was sent
    mode: str  # "hybrid" | "dense" | "sparse"
    relevant: bool  # False when nothing readable, or best score under the tuned threshold


@dataclass(frozen=True)
class Fusion:
    """How the hybrid mode combines its two candidate lists.

    weighted:  dense_weight * norm(dense) + (1 - dense_weight) * norm(sparse); a chunk
               missing from one list gets 0 for that half.
    rrf:       sum of weight / (rrf_k + rank) over both lists, computed here, with
               dense_weight and 1 - dense_weight as the weights (0.5 = plain RRF).
    rrf-store: the store's own RRF (query_hybrid: one round trip, equal weights); the
               dense cosine for `relevant` then needs a second, dense, query.
    rescue:    the dense ranking, except that the top `rescue` sparse hits that dense
               ranked below k are moved up to just after the dense top `rescue_at`.
    """

    method: str = "weighted"
    candidates: int = 100  # per half, before fusion
    dense_weight: float = 0.5
    norm: str = "minmax"
    rrf_k: int = 60
    rescue: int = 1
    rescue_at: int = 2
    # Pseudo-relevance feedback on the keyword half (off at 0): the top `prf_docs` fused
    # chunks lend their `prf_terms` heaviest BM25 terms, at `prf_weight`, to a second
    # sparse query, whose list replaces the first before the final fusion.
    prf_docs: int = 0
    prf_terms: int = 10
    prf_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"fusion method must be one of {FUSION_METHODS}, got {self.method!r}")
        if self.norm not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {self.norm!r}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must lie in [0, 1], got {self.dense_weight!r}")
        if (
            self.candidates < 1
            or self.rrf_k < 1
            or min(self.rescue, self.rescue_at, self.prf_docs, self.prf_terms) < 0
            or self.prf_weight < 0
        ):
            raise ValueError(f"fusion constants out of range: {self!r}")


def default_fusion() -> Fusion:
    return Fusion(
        method=settings.RETRIEVAL_FUSION,
        candidates=settings.RETRIEVAL_CANDIDATES,
        dense_weight=settings.RETRIEVAL_DENSE_WEIGHT,
        norm="minmax",
        rrf_k=settings.RRF_K,
    )


def retrieve(
    *, user: Any, question: str, k: int | None = None, mode: str | None = None
) -> Retrieval:
    """The chunks this user may read that best answer `question`, best first.

    Raises the store's StoreUnavailable / StoreError when search cannot run.
    """
    return retrieve_with(user=user, question=question, k=k, mode=mode, fusion=default_fusion())


def retrieve_with(
    *, user: Any, question: str, k: int | None, mode: str | None, fusion: Fusion
) -> Retrieval:
    """retrieve() with an explicit fusion: evaluate_retrieval compares variants with it."""
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

    from apps.retrieval.store import get_store

    store = get_store()
    flt = Filter.of(collection_id=collection_ids)
    readable = set(collection_ids)

    if mode == "sparse":
        from apps.retrieval import sparse

        found = store.query_sparse(sparse.encode_query(question), flt=flt, limit=k)
        scored = [(p, p.score) for p in found]
        # BM25 scores have no fixed scale; any keyword match counts as relevant here.
        best_dense = None
    else:
        from apps.retrieval.embeddings import embed_query

        vector = embed_query(question)
        if mode == "dense":
            found = store.query_dense(vector, flt=flt, limit=k)
            scored = [(p, p.score) for p in found]
            best_dense = found[0].score if found else None
        else:
            scored, best_dense = _hybrid(store, question, vector, flt=flt, k=k, fusion=fusion)

    hits = []
    for p, score in scored[:k]:
        hit = _hit(p, score)
        if hit.collection_id not in readable:
            # Unreachable unless a backend ignores its filter; never hand such a chunk on.
            logger.error("store returned point %s outside the query's filter", p.id)
            continue
        hits.append(hit)
    if best_dense is None:
        relevant = bool(hits)
    else:
        relevant = bool(hits) and best_dense >= settings.RETRIEVAL_MIN_SCORE
    return Retrieval(hits=hits, collection_ids=collection_ids, mode=mode, relevant=relevant)


# --- hybrid ----------------------------------------------------------------------------


def _hybrid(
    store: Any, question: str, vector: list[float], *, flt: Filter, k: int, fusion: Fusion
) -> tuple[list[tuple[ScoredPoint, float]], float | None]:
    from apps.retrieval import sparse

    sparse_vector = sparse.encode_query(question)
    limit = max(k, fusion.candidates)
    if fusion.method == "rrf-store":
        fused = store.query_hybrid(
            vector,
            sparse_vector,
            flt=flt,
            limit=k,
            prefetch_limit=limit,
            rrf_k=fusion.rrf_k,
        )
        top = store.query_dense(vector, flt=flt, limit=1)
        return [(p, p.score) for p in fused], (top[0].score if top else None)

    dense = store.query_dense(vector, flt=flt, limit=limit)
    keyword = (
        store.query_sparse(sparse_vector, flt=flt, limit=limit) if sparse_vector.indices else []
    )
    best_dense = dense[0].score if dense else None
    fused = _fuse(dense, keyword, k=k, fusion=fusion)
    if fusion.prf_docs and fused:
        expanded = _expand(sparse_vector, [p for p, _ in fused[: fusion.prf_docs]], fusion)
        if expanded is not None:
            keyword = store.query_sparse(expanded, flt=flt, limit=limit)
            fused = _fuse(dense, keyword, k=k, fusion=fusion)
    return fused, best_dense


def _fuse(
    dense: Sequence[ScoredPoint], keyword: Sequence[ScoredPoint], *, k: int, fusion: Fusion
) -> list[tuple[ScoredPoint, float]]:
    if fusion.method == "rescue":
        return _rescue(dense, keyword, k=k, fusion=fusion)
    if fusion.method == "rrf":
        return _rrf(dense, keyword, fusion=fusion)
    return _weighted(dense, keyword, fusion=fusion)


def _expand(query: Any, top: Sequence[ScoredPoint], fusion: Fusion) -> Any:
    """The query's terms at weight 1 plus the heaviest terms of the top chunks (their
    BM25 document weights, summed, scaled to prf_weight). The store's IDF modifier
    still weighs every term at query time, so a common expansion term costs little."""
    from apps.knowledge.chunking import embedding_text
    from apps.retrieval import sparse
    from apps.retrieval.store.protocol import SparseVector

    texts = [
        embedding_text(
            title=str(p.payload.get("title", "")),
            section=str(p.payload.get("section", "")),
            text=str(p.payload.get("text", "")),
        )
        for p in top
    ]
    weights: dict[int, float] = {}
    for vector in sparse.encode_documents(texts):
        for index, value in zip(vector.indices, vector.values, strict=True):
            weights[index] = weights.get(index, 0.0) + value
    own = set(query.indices)
    extra = sorted(((i, w) for i, w in weights.items() if i not in own), key=lambda item: -item[1])[
        : fusion.prf_terms
    ]
    if not extra:
        return None
    heaviest = extra[0][1]
    indices = list(query.indices) + [i for i, _ in extra]
    values = list(query.values) + [fusion.prf_weight * w / heaviest for _, w in extra]
    return SparseVector(indices=indices, values=values)


def _normalise(points: Sequence[ScoredPoint], how: str) -> dict[str, float]:
    if not points:
        return {}
    scores = [p.score for p in points]
    top = max(scores)
    if how == "max":
        return {p.id: (p.score / top if top > 0 else 0.0) for p in points}
    low = min(scores)
    span = top - low
    # A single candidate, or all equal: each is as good as the best.
    return {p.id: ((p.score - low) / span if span > 0 else 1.0) for p in points}


def _ordered(
    scores: dict[str, float], payloads: dict[str, ScoredPoint]
) -> list[tuple[ScoredPoint, float]]:
    # Ties (rare with real scores) go to the point id, so a run is reproducible.
    order = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(payloads[pid], score) for pid, score in order]


def _weighted(
    dense: Sequence[ScoredPoint], keyword: Sequence[ScoredPoint], *, fusion: Fusion
) -> list[tuple[ScoredPoint, float]]:
    d = _normalise(dense, fusion.norm)
    s = _normalise(keyword, fusion.norm)
    payloads = {p.id: p for p in keyword} | {p.id: p for p in dense}
    w = fusion.dense_weight
    fused = {pid: w * d.get(pid, 0.0) + (1 - w) * s.get(pid, 0.0) for pid in payloads}
    return _ordered(fused, payloads)


def _rrf(
    dense: Sequence[ScoredPoint], keyword: Sequence[ScoredPoint], *, fusion: Fusion
) -> list[tuple[ScoredPoint, float]]:
    payloads = {p.id: p for p in keyword} | {p.id: p for p in dense}
    fused: dict[str, float] = dict.fromkeys(payloads, 0.0)
    for weight, points in ((fusion.dense_weight, dense), (1 - fusion.dense_weight, keyword)):
        for rank, p in enumerate(points, start=1):
            fused[p.id] += weight / (fusion.rrf_k + rank)
    return _ordered(fused, payloads)


def _rescue(
    dense: Sequence[ScoredPoint], keyword: Sequence[ScoredPoint], *, k: int, fusion: Fusion
) -> list[tuple[ScoredPoint, float]]:
    top_dense = {p.id for p in dense[:k]}
    rescued = [p for p in keyword[: fusion.rescue] if p.id not in top_dense]
    rescued_ids = {p.id for p in rescued}
    rest = [p for p in dense if p.id not in rescued_ids]
    order = rest[: fusion.rescue_at] + rescued + rest[fusion.rescue_at :]
    # The order is the fusion; the score is its rank, decreasing, so it sorts the same.
    return [(p, 1.0 / (rank + 1)) for rank, p in enumerate(order)]


def _hit(p: ScoredPoint, score: float) -> Hit:
    from apps.core.labels import label_or_restricted

    payload = p.payload
    page = payload.get("page")
    return Hit(
        chunk_id=p.id,
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
    )


__all__ = [
    "MODES",
    "Fusion",
    "Hit",
    "Retrieval",
    "default_fusion",
    "retrieve",
    "retrieve_with",
]
