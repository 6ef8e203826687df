"""Retrieval metrics with the definitions BEIR reports (pytrec_eval / trec_eval).

Written here rather than imported so that evaluate_retrieval needs no extra package,
and pinned by hand-computed values in tests/search/test_metrics.py.

- A run is `{doc_id: score}` for one query. It is ranked by score descending, ties
  broken by doc id descending (trec_eval's rule), exactly as pytrec_eval ranks it.
- Qrels are `{doc_id: grade}`; grade > 0 means relevant.
- nDCG@k: linear gain (the grade), discount log2(rank + 1); the ideal DCG orders the
  query's judged grades, best first, cut at k (trec_eval's `ndcg_cut`).
- Recall@k: relevant documents in the top k / all relevant documents of the query.
- MRR@k: BEIR's custom metric, 1 / rank of the first relevant document in the top k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def ranked(run: Mapping[str, float]) -> list[str]:
    """Doc ids best first: score descending, then doc id descending."""
    by_id = sorted(run.items(), key=lambda item: item[0], reverse=True)
    # sorted() is stable, so equal scores keep the descending-id order.
    return [doc for doc, _ in sorted(by_id, key=lambda item: -item[1])]


def ndcg_at(qrels: Mapping[str, int], run: Mapping[str, float], k: int) -> float:
    gains = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if ideal == 0:
        return 0.0
    dcg = sum(max(qrels.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranked(run)[:k]))
    return dcg / ideal


def recall_at(qrels: Mapping[str, int], run: Mapping[str, float], k: int) -> float:
    relevant = {doc for doc, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked(run)[:k])) / len(relevant)


def mrr_at(qrels: Mapping[str, int], run: Mapping[str, float], k: int) -> float:
    for i, doc in enumerate(ranked(run)[:k]):
        if qrels.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def run_from_ranking(doc_ids: Iterable[str], scores: Iterable[float]) -> dict[str, float]:
    """Collapse a ranked list of chunks into a run of documents: each document keeps the
    score of its best (first) chunk, as a document-level BEIR run would."""
    run: dict[str, float] = {}
    for doc, score in zip(doc_ids, scores, strict=True):
        if doc not in run:
            run[doc] = float(score)
    return run


def evaluate(
    qrels: Mapping[str, Mapping[str, int]], runs: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    """Mean nDCG@10, Recall@10, Recall@100 and MRR@10 over the queries of `qrels`
    (a query with no run scores zero on all of them)."""
    names = ("nDCG@10", "Recall@10", "Recall@100", "MRR@10")
    if not qrels:
        return dict.fromkeys(names, 0.0)
    totals = dict.fromkeys(names, 0.0)
    for qid, judged in qrels.items():
        run = runs.get(qid, {})
        totals["nDCG@10"] += ndcg_at(judged, run, 10)
        totals["Recall@10"] += recall_at(judged, run, 10)
        totals["Recall@100"] += recall_at(judged, run, 100)
        totals["MRR@10"] += mrr_at(judged, run, 10)
    return {name: total / len(qrels) for name, total in totals.items()}


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with at least pct% at or below it)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
