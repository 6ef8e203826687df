"""The product's hybrid fusion (weighted min-max) on small cases computed by hand."""

from __future__ import annotations

import pytest

from apps.retrieval.store.protocol import ScoredPoint
from apps.search.fusion import Fusion, default_fusion, fuse, minmax


def _points(scores: dict[str, float], source: str) -> list[ScoredPoint]:
    """A candidate list as the store returns it: best first."""
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    return [ScoredPoint(id=pid, score=score, payload={"from": source}) for pid, score in ranked]


def test_weighted_fusion_ranks_by_the_normalised_weighted_sum():
    dense = _points({"a": 0.9, "b": 0.7, "c": 0.5}, "dense")  # cosines
    keyword = _points({"c": 12.0, "d": 8.0, "a": 4.0}, "sparse")  # BM25 scores
    # min-max per list:  dense  a = 1, b = (0.7 - 0.5) / 0.4 = 0.5, c = 0
    #                    sparse c = 1, d = (8 - 4) / 8 = 0.5,     a = 0
    # 0.6 dense + 0.4 sparse (a point missing from a list gets 0 there):
    #   a = 0.6 * 1   + 0.4 * 0   = 0.6
    #   c = 0.6 * 0   + 0.4 * 1   = 0.4
    #   b = 0.6 * 0.5 + 0.4 * 0   = 0.3   (not in the keyword list)
    #   d = 0.6 * 0   + 0.4 * 0.5 = 0.2   (not in the dense list)
    fused = fuse(dense, keyword, dense_weight=0.6)
    assert [p.id for p, _ in fused] == ["a", "c", "b", "d"]
    assert [score for _, score in fused] == pytest.approx([0.6, 0.4, 0.3, 0.2])


def test_the_weight_decides_between_a_sure_dense_and_a_sure_keyword_hit():
    dense = _points({"a": 0.8, "c": 0.2}, "dense")
    keyword = _points({"c": 9.0, "a": 1.0}, "sparse")
    # Normalised, a is (1, 0) and c is (0, 1): a scores w, c scores 1 - w.
    assert [p.id for p, _ in fuse(dense, keyword, dense_weight=0.6)] == ["a", "c"]
    assert [p.id for p, _ in fuse(dense, keyword, dense_weight=0.3)] == ["c", "a"]


def test_equal_scores_go_to_the_point_id_and_a_lone_candidate_counts_as_best():
    dense = _points({"b": 0.4, "a": 0.4}, "dense")  # all equal: each normalises to 1
    # a = b = 0.5 * 1 + 0.5 * 0; the tie goes to the smaller id, so a run is reproducible.
    assert [p.id for p, _ in fuse(dense, [], dense_weight=0.5)] == ["a", "b"]
    assert minmax(_points({"x": 0.3}, "dense")) == {"x": 1.0}
    assert minmax([]) == {}


def test_a_point_in_both_lists_is_one_hit_with_the_dense_copy():
    dense = _points({"a": 0.9, "b": 0.1}, "dense")
    keyword = _points({"a": 3.0, "c": 1.0}, "sparse")
    fused = fuse(dense, keyword, dense_weight=0.5)
    assert [p.id for p, _ in fused].count("a") == 1
    assert dict((p.id, p.payload["from"]) for p, _ in fused)["a"] == "dense"


def test_default_fusion_is_the_configured_one(settings):
    settings.RETRIEVAL_CANDIDATES = 40
    settings.RETRIEVAL_DENSE_WEIGHT = 0.7
    settings.RETRIEVAL_HEADING_WEIGHT = 0.3
    assert default_fusion() == Fusion(candidates=40, dense_weight=0.7, heading_weight=0.3)
    with pytest.raises(ValueError):
        Fusion(dense_weight=1.5)
    with pytest.raises(ValueError):
        Fusion(heading_weight=-0.1)
    with pytest.raises(ValueError):
        Fusion(candidates=0)
