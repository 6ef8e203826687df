"""How hybrid search combines its two candidate lists: weighted score fusion.

Each list's scores are min-max normalised over its own candidates, then
`dense_weight * dense + (1 - dense_weight) * sparse`; a chunk missing from one list gets
0 for that half. Chosen by measurement on the dev set (README "Retrieval"): it beat
reciprocal rank fusion, a dense-first ranking with sparse rescue and query expansion,
which stay in apps/search/evaluation/ to be measured again, out of the product's path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings

from apps.retrieval.store.protocol import ScoredPoint

# Points best first, each with the score that put it there.
Ranked = list[tuple[ScoredPoint, float]]
Normalise = Callable[[Sequence[ScoredPoint]], dict[str, float]]


@dataclass(frozen=True)
class Fusion:
    candidates: int = 100  # per list, before fusion
    dense_weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must lie in [0, 1], got {self.dense_weight!r}")
        if self.candidates < 1:
            raise ValueError(f"fusion constants out of range: {self!r}")


def default_fusion() -> Fusion:
    return Fusion(
        candidates=settings.RETRIEVAL_CANDIDATES, dense_weight=settings.RETRIEVAL_DENSE_WEIGHT
    )


def minmax(points: Sequence[ScoredPoint]) -> dict[str, float]:
    if not points:
        return {}
    scores = [p.score for p in points]
    top = max(scores)
    low = min(scores)
    span = top - low
    # A single candidate, or all equal: each is as good as the best.
    return {p.id: ((p.score - low) / span if span > 0 else 1.0) for p in points}


def ordered(scores: dict[str, float], points: dict[str, ScoredPoint]) -> Ranked:
    # Ties (rare with real scores) go to the point id, so a run is reproducible.
    order = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(points[pid], score) for pid, score in order]


def sureness(points: Sequence[ScoredPoint], depth: int = 10) -> float:
    """How far a list's best score stands out of the list's head, in [0, 1]: the best
    score's lead over the mean of the next `depth - 1`, over its lead over the last of
    them. Scale-free, so a BM25 list and a cosine list compare; 0 for a flat head or a
    list of fewer than two."""
    head = [p.score for p in points[:depth]]
    if len(head) < 2:
        return 0.0
    span = head[0] - head[-1]
    if span <= 0:
        return 0.0
    rest = head[1:]
    return (head[0] - sum(rest) / len(rest)) / span


@dataclass(frozen=True)
class QueryWeight:
    """The dense weight for one query, from its two lists.

    Two signals. The dense list's best cosine is the one score with a scale that means
    the same from one question to the next: far above `cosine_mid`, dense has found the
    passage and the keyword side mostly adds noise; below it, the keywords get more say.
    And the shape of the heads: a keyword list whose best chunk stands far above the rest
    (a question naming a rare identifier found in one passage) earns the keyword side
    weight; a flat keyword head (plain words matched loosely everywhere) gives it back.
    `base + cosine_slope * (cosine - cosine_mid) + slope * (dense sureness - keyword
    sureness)`, kept in [low, high].
    """

    base: float = 0.6
    slope: float = 0.0
    cosine_slope: float = 0.0
    cosine_mid: float = 0.6
    low: float = 0.3
    high: float = 1.0
    depth: int = 10

    def __call__(self, dense: Sequence[ScoredPoint], keyword: Sequence[ScoredPoint]) -> float:
        if not keyword:
            return 1.0
        if not dense:
            return 0.0
        weight = self.base + self.cosine_slope * (dense[0].score - self.cosine_mid)
        if self.slope:
            weight += self.slope * (sureness(dense, self.depth) - sureness(keyword, self.depth))
        return min(self.high, max(self.low, weight))


def fuse(
    dense: Sequence[ScoredPoint],
    keyword: Sequence[ScoredPoint],
    *,
    dense_weight: float,
    normalise: Normalise = minmax,
) -> Ranked:
    """Every point of either list, best first by its weighted, normalised score."""
    d = normalise(dense)
    s = normalise(keyword)
    # A point found by both lists is the same chunk; the dense copy is kept.
    points = {p.id: p for p in keyword} | {p.id: p for p in dense}
    fused = {
        pid: dense_weight * d.get(pid, 0.0) + (1 - dense_weight) * s.get(pid, 0.0) for pid in points
    }
    return ordered(fused, points)
