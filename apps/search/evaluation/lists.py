"""The two candidate lists of every judged query, written once, fused many times offline.

A hybrid ranking is a function of the dense and the keyword candidate lists alone (the
product's fusion, and every variant in fusions.py except query expansion and the store's
own RRF). `evaluate_retrieval --lists FILE` writes those lists for every judged query of
every split, after one ingestion; `evaluate_fusion --lists FILE ...` then scores any
number of fusion rules on any number of data sets in seconds, without a store or a model.
This is how the per-query fusion was chosen across the dev sets (README "Retrieval").

File shape (JSON): {"name", "splits": {split: {"qrels": {qid: {doc: grade}},
"queries": {qid: {"text", "terms", "dense": [[point id, doc id, score, heading], ...],
"sparse": [...]}}}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.retrieval.store.protocol import ScoredPoint
from apps.search.evaluation.metrics import evaluate, run_from_ranking
from apps.search.fusion import Ranked, heading_of
from apps.search.search import Candidates

Row = list[Any]  # [point id, doc id, score, heading]


def dump_query(candidates: Candidates, doc_ids: Mapping[int, str], *, limit: int) -> dict:
    dense, keyword = candidates.lists(limit=limit)

    def rows(points: Sequence[ScoredPoint]) -> list[Row]:
        return [
            [p.id, doc_ids[int(p.payload["document_id"])], p.score, heading_of(p)] for p in points
        ]

    return {
        "text": candidates.question,
        "terms": len(candidates.keywords.indices),
        "dense": rows(dense),
        "sparse": rows(keyword),
    }


@dataclass(frozen=True)
class QueryLists:
    text: str
    terms: int  # distinct BM25 terms of the question
    dense: list[ScoredPoint]
    sparse: list[ScoredPoint]
    doc_of: dict[str, str]  # point id → corpus id
    heading: dict[str, str]  # point id → the title and section it sits under


@dataclass(frozen=True)
class SplitLists:
    set_name: str
    split: str
    qrels: dict[str, dict[str, int]]
    queries: dict[str, QueryLists]

    @property
    def label(self) -> str:
        return f"{self.set_name}/{self.split}"

    def score(self, rank: Any, *, k: int = 100) -> dict[str, float]:
        """Metrics of `rank(QueryLists) -> Ranked` over this split."""
        runs = {}
        for qid, q in self.queries.items():
            ranked: Ranked = rank(q)[:k]
            runs[qid] = run_from_ranking(
                [q.doc_of[p.id] for p, _ in ranked], [s for _, s in ranked]
            )
        return evaluate(self.qrels, runs)


def _points(rows: list[Row], doc_of: dict[str, str], heading: dict[str, str]) -> list[ScoredPoint]:
    out = []
    for pid, doc, score, *rest in rows:
        doc_of[str(pid)] = str(doc)
        heading[str(pid)] = str(rest[0]) if rest else ""
        out.append(ScoredPoint(id=str(pid), score=float(score), payload={}))
    return out


def load(path: Path) -> list[SplitLists]:
    data = json.loads(path.read_text(encoding="utf-8"))
    name = str(data.get("name") or path.stem)
    found = []
    for split, body in data["splits"].items():
        queries = {}
        for qid, q in body["queries"].items():
            doc_of: dict[str, str] = {}
            heading: dict[str, str] = {}
            dense = _points(q["dense"], doc_of, heading)
            sparse = _points(q["sparse"], doc_of, heading)
            queries[qid] = QueryLists(
                text=q["text"],
                terms=int(q["terms"]),
                dense=dense,
                sparse=sparse,
                doc_of=doc_of,
                heading=heading,
            )
        qrels = {qid: dict(judged) for qid, judged in body["qrels"].items() if qid in queries}
        found.append(SplitLists(set_name=name, split=split, qrels=qrels, queries=queries))
    return found
