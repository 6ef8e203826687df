"""The metrics against values computed by hand with the pytrec_eval / BEIR definitions."""

from __future__ import annotations

import math

import pytest

from apps.search.evaluation.metrics import (
    evaluate,
    mrr_at,
    ndcg_at,
    percentile,
    ranked,
    recall_at,
    run_from_ranking,
)

QRELS = {"d1": 2, "d2": 1, "d3": 0}
# Ranked d2 (0.9), d4 (0.7), d1 (0.5): gains 1, 0, 2.
RUN = {"d1": 0.5, "d2": 0.9, "d4": 0.7}


def test_ndcg_uses_linear_gains_and_log2_discount():
    dcg = 1 / math.log2(2) + 0 + 2 / math.log2(4)  # = 2.0
    ideal = 2 / math.log2(2) + 1 / math.log2(3)  # grades 2, 1 best first
    assert ndcg_at(QRELS, RUN, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at(QRELS, RUN, 10) == pytest.approx(0.76019, abs=1e-5)
    # Cut at 1: only d2 (gain 1) against the ideal first gain 2.
    assert ndcg_at(QRELS, RUN, 1) == pytest.approx(0.5)
    assert ndcg_at(QRELS, {d: 1.0 - i / 10 for i, d in enumerate(["d1", "d2"])}, 10) == 1.0


def test_recall_counts_relevant_in_the_top_k():
    assert recall_at(QRELS, RUN, 10) == 1.0
    assert recall_at(QRELS, RUN, 1) == 0.5
    assert recall_at(QRELS, RUN, 2) == 0.5
    assert recall_at({"x": 0}, RUN, 10) == 0.0  # nothing relevant judged


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_document():
    assert mrr_at(QRELS, RUN, 10) == 1.0
    assert mrr_at(QRELS, {"d4": 0.9, "d1": 0.1}, 10) == 0.5
    assert mrr_at(QRELS, {"d4": 0.9, "d1": 0.1}, 1) == 0.0
    assert mrr_at(QRELS, {"d3": 0.9}, 10) == 0.0  # grade 0 is not relevant


def test_ties_are_broken_by_doc_id_descending():
    run = {"a": 1.0, "c": 1.0, "b": 1.0, "z": 0.5}
    assert ranked(run) == ["c", "b", "a", "z"]
    assert mrr_at({"a": 1}, run, 10) == pytest.approx(1 / 3)
    assert ndcg_at({"a": 1}, run, 10) == pytest.approx(1 / math.log2(4))


def test_evaluate_averages_over_judged_queries_and_a_missing_run_scores_zero():
    qrels = {"q1": QRELS, "q2": {"d9": 1}}
    scores = evaluate(qrels, {"q1": RUN})
    assert scores["nDCG@10"] == pytest.approx(0.76019 / 2, abs=1e-5)
    assert scores["Recall@10"] == pytest.approx(0.5)
    assert scores["Recall@100"] == pytest.approx(0.5)
    assert scores["MRR@10"] == pytest.approx(0.5)
    assert evaluate({}, {}) == {"nDCG@10": 0, "Recall@10": 0, "Recall@100": 0, "MRR@10": 0}


def test_recall_at_100_sees_past_the_tenth_document():
    run = {f"n{i:03d}": 1.0 - i / 1000 for i in range(50)} | {"rel": 0.001}
    assert recall_at({"rel": 1}, run, 10) == 0.0
    assert recall_at({"rel": 1}, run, 100) == 1.0


def test_chunks_collapse_to_their_document_at_its_best_rank():
    assert run_from_ranking(["a", "b", "a", "c"], [3.0, 2.0, 1.0, 0.5]) == {
        "a": 3.0,
        "b": 2.0,
        "c": 0.5,
    }


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 95) == 10.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 95) == 0.0
