"""Hybrid rankings for evaluate_retrieval: the product's fusion and the ones it beat.

The product ranks with weighted min-max fusion (apps/search/fusion.py). The variants
below lost the measurement on the dev set (README "Retrieval") and are kept here, out of
the product's path, so the comparison can be run again on new data:

weighted:  the product's fusion, with `norm` minmax (the product's) or max (each score
           divided by its list's best), and `h` the heading match (minmax only).
rrf:       sum of weight / (rrf_k + rank) over both lists, computed here, with
           dense_weight and 1 - dense_weight as the weights (0.5 = plain RRF).
rrf-store: the store's own RRF (query_hybrid: one round trip, equal weights); the dense
           cosine for `relevant` then needs a second, dense, query.
rescue:    the dense ranking, except that the top `rescue` sparse hits that dense ranked
           below k are moved up to just after the dense top `rescue_at`.
prf:       pseudo-relevance feedback on the keyword half (off at 0): the top `prf_docs`
           fused chunks lend their `prf_terms` heaviest BM25 terms, at `prf_weight`, to a
           second sparse query, whose list replaces the first before the final fusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.management.base import CommandError

from apps.knowledge.points import stored_text
from apps.retrieval import sparse
from apps.retrieval.store.protocol import ScoredPoint, SparseVector
from apps.search.fusion import Fusion, Ranked, default_fusion, fuse, minmax, ordered
from apps.search.search import Candidates

FUSION_METHODS = ("weighted", "rrf", "rrf-store", "rescue")
NORMALISATIONS = ("minmax", "max")


@dataclass(frozen=True)
class FusionVariant:
    method: str = "weighted"
    candidates: int = 100  # per list, before fusion
    dense_weight: float = 0.5
    norm: str = "minmax"
    rrf_k: int = 60
    rescue: int = 1
    rescue_at: int = 2
    prf_docs: int = 0
    prf_terms: int = 10
    prf_weight: float = 0.3
    heading: float = 0.0  # the product's heading match (weighted minmax only)

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

    def rank(self, candidates: Candidates, k: int) -> tuple[Ranked, float | None]:
        """A HybridRank for retrieve_with()."""
        limit = max(k, self.candidates)
        if self.method == "rrf-store":
            fused = candidates.store_rrf(limit=k, prefetch_limit=limit, rrf_k=self.rrf_k)
            top = candidates.dense(limit=1)
            return [(p, p.score) for p in fused], (top[0].score if top else None)
        dense, keyword = candidates.lists(limit=limit)
        best_dense = dense[0].score if dense else None
        ranked = self._fuse(dense, keyword, k=k, question=candidates.question)
        if self.prf_docs and ranked:
            top_chunks = [p for p, _ in ranked[: self.prf_docs]]
            expanded = _expand(candidates.keywords, top_chunks, self)
            if expanded is not None:
                keyword = candidates.sparse(limit=limit, query=expanded)
                ranked = self._fuse(dense, keyword, k=k, question=candidates.question)
        return ranked, best_dense

    def _fuse(
        self,
        dense: Sequence[ScoredPoint],
        keyword: Sequence[ScoredPoint],
        *,
        k: int,
        question: str,
    ) -> Ranked:
        if self.method == "rescue":
            return _rescue(dense, keyword, k=k, fusion=self)
        if self.method == "rrf":
            return _rrf(dense, keyword, fusion=self)
        if self.heading and self.norm == "minmax":
            ranking = Fusion(dense_weight=self.dense_weight, heading_weight=self.heading)
            return ranking.ranking().rank(dense, keyword, question)
        normalise = _max_normalise if self.norm == "max" else minmax
        return fuse(dense, keyword, dense_weight=self.dense_weight, normalise=normalise)

    @property
    def label(self) -> str:
        """How the variant is named in the command's table and JSON."""
        label = self._method_label()
        if self.prf_docs:
            label += f" prf={self.prf_docs}/{self.prf_terms}/{self.prf_weight:g}"
        return label

    def _method_label(self) -> str:
        if self.method == "weighted":
            heading = f" h={self.heading:g}" if self.heading else ""
            return f"weighted w={self.dense_weight:g}{heading} {self.norm} c={self.candidates}"
        if self.method == "rrf":
            return f"rrf k={self.rrf_k} w={self.dense_weight:g} c={self.candidates}"
        if self.method == "rrf-store":
            return f"rrf-store k={self.rrf_k} c={self.candidates}"
        return f"rescue n={self.rescue} at={self.rescue_at} c={self.candidates}"


def configured_variant() -> FusionVariant:
    """The product's fusion, as the variant every other one is compared with."""
    fusion = default_fusion()
    return FusionVariant(
        method="weighted",
        candidates=fusion.candidates,
        dense_weight=fusion.dense_weight,
        norm="minmax",
        rrf_k=settings.RRF_K,
        heading=fusion.heading_weight,
    )


def parse_fusion(spec: str) -> FusionVariant:
    """`method[:key=value,...]`, keys w (dense weight), norm, c (candidates), k (RRF k),
    n (rescued sparse hits), at (rescue position), prf/prft/prfw (feedback chunks, terms,
    weight), h (heading match); unset keys keep the configured value."""
    method, _, rest = spec.partition(":")
    names: dict[str, tuple[str, type[float] | type[int] | type[str]]] = {
        "w": ("dense_weight", float),
        "norm": ("norm", str),
        "c": ("candidates", int),
        "k": ("rrf_k", int),
        "n": ("rescue", int),
        "at": ("rescue_at", int),
        "prf": ("prf_docs", int),
        "prft": ("prf_terms", int),
        "prfw": ("prf_weight", float),
        "h": ("heading", float),
    }
    changes: dict[str, float | int | str] = {"method": method}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        if key not in names:
            raise CommandError(f"unknown fusion key {key!r} in {spec!r}; use {sorted(names)}")
        attr, kind = names[key]
        changes[attr] = kind(value)
    try:
        return replace(configured_variant(), **changes)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise CommandError(f"bad --fusion {spec!r}: {err}") from err


def _max_normalise(points: Sequence[ScoredPoint]) -> dict[str, float]:
    if not points:
        return {}
    top = max(p.score for p in points)
    return {p.id: (p.score / top if top > 0 else 0.0) for p in points}


def _rrf(
    dense: Sequence[ScoredPoint], keyword: Sequence[ScoredPoint], *, fusion: FusionVariant
) -> Ranked:
    points = {p.id: p for p in keyword} | {p.id: p for p in dense}
    fused: dict[str, float] = dict.fromkeys(points, 0.0)
    for weight, found in ((fusion.dense_weight, dense), (1 - fusion.dense_weight, keyword)):
        for rank, p in enumerate(found, start=1):
            fused[p.id] += weight / (fusion.rrf_k + rank)
    return ordered(fused, points)


def _rescue(
    dense: Sequence[ScoredPoint],
    keyword: Sequence[ScoredPoint],
    *,
    k: int,
    fusion: FusionVariant,
) -> Ranked:
    top_dense = {p.id for p in dense[:k]}
    rescued = [p for p in keyword[: fusion.rescue] if p.id not in top_dense]
    rescued_ids = {p.id for p in rescued}
    rest = [p for p in dense if p.id not in rescued_ids]
    order = rest[: fusion.rescue_at] + rescued + rest[fusion.rescue_at :]
    # The order is the fusion; the score is its rank, decreasing, so it sorts the same.
    return [(p, 1.0 / (rank + 1)) for rank, p in enumerate(order)]


def _expand(
    query: SparseVector, top: Sequence[ScoredPoint], fusion: FusionVariant
) -> SparseVector | None:
    """The query's terms at weight 1 plus the heaviest terms of the top chunks (their
    BM25 document weights, summed, scaled to prf_weight). The store's IDF modifier
    still weighs every term at query time, so a common expansion term costs little."""
    weights: dict[int, float] = {}
    for vector in sparse.encode_documents([stored_text(p) for p in top]):
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
