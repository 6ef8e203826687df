"""Fusion rules scored offline on dumped candidate lists (evaluate_fusion).

Each rule turns one query's dense and keyword lists into a ranking. Specs, as
`evaluate_fusion --rule` takes them:

dense, sparse          one list alone (what the product's dense and sparse modes return)
fixed:w=0.6            the weighted min-max fusion of apps/search/fusion.py, fixed weight
query:...              the product's per-query fusion (fusion.QueryFusion) with its
                       constants overridden: w (base weight), a (sureness slope), c (cosine
                       slope), m (cosine mid), lo, hi, depth, h (heading match)
share:e=0.05           dense weight = dense sureness / both surenesses (smoothed by e)
z:w=0.6                fixed weight over z-scores (mean and deviation of each list)
rrf:k=60,w=0.5         weighted reciprocal rank fusion

A "sureness" is how far a list's best score stands out of its head (fusion.sureness).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace

from django.core.management.base import CommandError

from apps.retrieval.store.protocol import ScoredPoint
from apps.search.evaluation.lists import QueryLists
from apps.search.fusion import QueryFusion, Ranked, default_fusion, fuse, ordered, sureness

Rule = Callable[[QueryLists], Ranked]


def _alone(which: str) -> Rule:
    def rank(q: QueryLists) -> Ranked:
        return [(p, p.score) for p in (q.dense if which == "dense" else q.sparse)]

    return rank


def _fixed(w: float) -> Rule:
    return lambda q: fuse(q.dense, q.sparse, dense_weight=w)


def _query(fusion: QueryFusion) -> Rule:
    return lambda q: fusion.rank(q.dense, q.sparse, q.text, headings=lambda p: q.heading[p.id])


def _share(e: float, depth: int) -> Rule:
    def rank(q: QueryLists) -> Ranked:
        d, s = sureness(q.dense, depth), sureness(q.sparse, depth) if q.sparse else 0.0
        return fuse(q.dense, q.sparse, dense_weight=(d + e) / (d + s + 2 * e))

    return rank


def _zscores(points: Sequence[ScoredPoint]) -> dict[str, float]:
    if len(points) < 2:
        return {p.id: 1.0 for p in points}
    scores = [p.score for p in points]
    mean, dev = statistics.fmean(scores), statistics.pstdev(scores) or 1.0
    # Shifted so the list's worst candidate sits at 0, as a missing chunk does.
    low = (min(scores) - mean) / dev
    return {p.id: (p.score - mean) / dev - low for p in points}


def _z(w: float) -> Rule:
    return lambda q: fuse(q.dense, q.sparse, dense_weight=w, normalise=_zscores)


def _rrf(k: int, w: float) -> Rule:
    def rank(q: QueryLists) -> Ranked:
        points = {p.id: p for p in q.sparse} | {p.id: p for p in q.dense}
        fused = dict.fromkeys(points, 0.0)
        for weight, found in ((w, q.dense), (1 - w, q.sparse)):
            for r, p in enumerate(found, start=1):
                fused[p.id] += weight / (k + r)
        return ordered(fused, points)

    return rank


def parse_rule(spec: str) -> Rule:
    method, _, rest = spec.partition(":")
    values: dict[str, float] = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        try:
            values[key] = float(value)
        except ValueError as err:
            raise CommandError(f"bad value in rule {spec!r}: {part!r}") from err
    if method in ("dense", "sparse"):
        return _alone(method)
    if method == "fixed":
        return _fixed(values.get("w", 0.6))
    if method == "query":
        names = {
            "w": "base",
            "a": "slope",
            "c": "cosine_slope",
            "m": "cosine_mid",
            "lo": "low",
            "hi": "high",
            "depth": "depth",
            "h": "heading",
        }
        unknown = set(values) - set(names)
        if unknown:
            raise CommandError(f"unknown keys {sorted(unknown)} in {spec!r}; use {sorted(names)}")
        # What a rule leaves out is what the product runs with (its settings), so a
        # rule without `w=` or `h=` scores the configured fusion, not a second copy.
        product = default_fusion().ranking()
        heading = values.pop("h", product.heading)
        changes = {names[k]: (int(v) if k == "depth" else v) for k, v in values.items()}
        weight = replace(product.weight, **changes)  # type: ignore[arg-type]
        return _query(QueryFusion(weight=weight, heading=heading))
    if method == "share":
        return _share(values.get("e", 0.05), int(values.get("depth", 10)))
    if method == "z":
        return _z(values.get("w", 0.6))
    if method == "rrf":
        return _rrf(int(values.get("k", 60)), values.get("w", 0.5))
    raise CommandError(f"unknown rule {method!r} in {spec!r}")
