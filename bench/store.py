"""Filtered-search recall and cost of the embedded store: our exact-search threshold
against qdrant-edge's default, after optimize() has built HNSW graphs.

    .venv/bin/python bench/store.py [--points 60000] [--dim 384] [--queries 50]

Recall is measured against exact (brute-force) search on the same shard. Time is printed
as a ratio against the exact baseline run in the same process, never as an absolute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(path: Path, *, dim: int, vectors, collections: int, ours: bool):
    import qdrant_edge as q

    from apps.retrieval.store.protocol import full_scan_threshold_kb

    kwargs = {}
    if ours:
        kwargs["hnsw_config"] = q.HnswIndexConfig(
            m=16, ef_construct=100, full_scan_threshold=full_scan_threshold_kb(dim)
        )
        kwargs["optimizers"] = q.EdgeOptimizersConfig(
            indexing_threshold=full_scan_threshold_kb(dim)
        )
    shard = q.EdgeShard.create(
        str(path),
        q.EdgeConfig(
            vectors={"dense": q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine)}, **kwargs
        ),
    )
    shard.update(q.UpdateOperation.create_field_index("collection_id", q.PayloadSchemaType.Integer))
    started = time.perf_counter()
    for start in range(0, len(vectors), 2000):
        batch = [
            q.Point(
                str(uuid.UUID(int=i + 1)),
                {"dense": vectors[i].tolist()},
                {"collection_id": i % collections},
            )
            for i in range(start, min(start + 2000, len(vectors)))
        ]
        shard.update(q.UpdateOperation.upsert_points(batch))
    upsert_s = time.perf_counter() - started
    started = time.perf_counter()
    shard.optimize()
    return shard, upsert_s, time.perf_counter() - started


def measure(shard, queries, *, collections: int) -> tuple[float, float, float]:
    import qdrant_edge as q

    recalls, fast, exact = [], [], []
    for n, vector in enumerate(queries):
        flt = q.Filter(
            must=[q.FieldCondition("collection_id", match=q.MatchAny([n % collections]))]
        )

        def run(params, vector=vector, flt=flt):
            t = time.perf_counter()
            found = shard.query(
                q.QueryRequest(
                    limit=10,
                    query=q.Query.Nearest(vector.tolist(), using="dense"),
                    filter=flt,
                    params=params,
                )
            )
            return {p.id for p in found}, time.perf_counter() - t

        got, t_fast = run(None)
        truth, t_exact = run(q.SearchParams(exact=True))
        recalls.append(len(got & truth) / len(truth))
        fast.append(t_fast)
        exact.append(t_exact)
    return statistics.mean(recalls), statistics.median(fast), statistics.median(exact)


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=60_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--collections", type=int, default=10, help="filter selectivity 1/N")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    # Clustered data, closer to sentence embeddings than uniform noise.
    centres = rng.standard_normal((200, args.dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, args.points)] + 0.6 * rng.standard_normal(
        (args.points, args.dim)
    ).astype(np.float32)
    queries = centres[rng.integers(0, 200, args.queries)] + 0.6 * rng.standard_normal(
        (args.queries, args.dim)
    ).astype(np.float32)

    print(f"{args.points} points, {args.dim}-d, filter keeps 1/{args.collections}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, ours in (("qdrant-edge default", False), ("Enclave threshold", True)):
            shard, upsert_s, optimize_s = build(
                Path(tmp) / label.replace(" ", "-"),
                dim=args.dim,
                vectors=vectors,
                collections=args.collections,
                ours=ours,
            )
            recall, fast, exact = measure(shard, queries, collections=args.collections)
            info = shard.info()
            print(
                f"{label:20s} recall@10 {recall:.3f}  time vs exact x{fast / exact:.2f}  "
                f"upsert {args.points / upsert_s:,.0f} points/s  optimize {optimize_s:.0f} s  "
                f"segments {info.segments_count} indexed {info.indexed_vectors_count}"
            )
            shard.close()


if __name__ == "__main__":
    main()
