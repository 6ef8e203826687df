"""How hybrid search combines its two candidate lists: weighted score fusion plus a
heading match (QueryFusion, at the end).

Each list's scores are min-max normalised over its own candidates, then
`dense_weight * dense + (1 - dense_weight) * sparse`; a chunk missing from one list gets
0 for that half. Then each chunk gains `heading_weight` times the share of the question's
content words found in its title and section heading. Chosen by the worst of the dev sets
(README "Retrieval"): it beat reciprocal rank fusion, a dense-first ranking with sparse
rescue, query expansion and weights that follow the shape of the lists, which stay in
apps/search/evaluation/ to be measured again, out of the product's path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings

from apps.retrieval.store.protocol import ScoredPoint

# Points best first, each with the score that put it there.
Ranked = list[tuple[ScoredPoint, float]]
Normalise = Callable[[Sequence[ScoredPoint]], dict[str, float]]


@dataclass(frozen=True)
class Fusion:
    candidates: int = 100  # per list, before fusion
    dense_weight: float = 0.5
    heading_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must lie in [0, 1], got {self.dense_weight!r}")
        if self.candidates < 1 or self.heading_weight < 0:
            raise ValueError(f"fusion constants out of range: {self!r}")

    def ranking(self) -> QueryFusion:
        return QueryFusion(weight=QueryWeight(base=self.dense_weight), heading=self.heading_weight)


def default_fusion() -> Fusion:
    return Fusion(
        candidates=settings.RETRIEVAL_CANDIDATES,
        dense_weight=settings.RETRIEVAL_DENSE_WEIGHT,
        heading_weight=settings.RETRIEVAL_HEADING_WEIGHT,
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

    base: float = 0.8
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


WORD = re.compile(r"[^\W_]+(?:_[^\W_]+)*")
# Function words and the question's own scaffolding: they say nothing about a heading.
STOP_WORDS = frozenset(
    "a an the is are was were be been being do does did how what why when where which who "
    "whom can could i my me we our you your it its of to in on for with and or not no by "
    "from at as this that these those there here will would should shall may might must "
    "if so than then use using get about into".split()
)


@lru_cache(maxsize=8192)
def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in WORD.findall(text.lower()) if len(w) > 1 and w not in STOP_WORDS)


def heading_of(point: ScoredPoint) -> str:
    """The title and section a chunk sits under, as its payload carries them."""
    title = str(point.payload.get("title", ""))
    section = str(point.payload.get("section", ""))
    return title if not section or section == title else f"{title} › {section}"


def heading_match(words: frozenset[str], heading: str) -> float:
    """The share of the question's content words that its heading holds, in [0, 1]."""
    if not words:
        return 0.0
    return len(words & content_words(heading)) / len(words)


@dataclass(frozen=True)
class QueryFusion:
    """The product's hybrid ranking of one question (README "Retrieval").

    The two lists are fused with a weight chosen for this question (QueryWeight); then
    each chunk gains `heading` times the share of the question's content words found in
    its document title and section heading. A question asked the way a heading is
    written ("How do I retry a task?" under "Retrying") finds its section although its
    words are spread thin in the chunk text. Headings travel in every point's payload,
    so this costs no store query and no model call.
    """

    weight: QueryWeight = field(default_factory=QueryWeight)
    heading: float = 0.2

    def rank(
        self,
        dense: Sequence[ScoredPoint],
        keyword: Sequence[ScoredPoint],
        question: str,
        *,
        headings: Callable[[ScoredPoint], str] = heading_of,
    ) -> Ranked:
        fused = fuse(dense, keyword, dense_weight=self.weight(dense, keyword))
        words = content_words(question) if self.heading else frozenset()
        if not words:
            return fused
        points = {p.id: p for p, _ in fused}
        boosted = {p.id: s + self.heading * heading_match(words, headings(p)) for p, s in fused}
        return ordered(boosted, points)
