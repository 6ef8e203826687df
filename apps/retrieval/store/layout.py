"""How ServerStore lays out a new collection on a Qdrant server: shards, replicas, what
lives on disk, the HNSW graph, quantization (README "Production" has the arithmetic).

settings.py takes the allowed QDRANT_QUANTIZATION values from here, so this module
imports nothing heavy at import time; qdrant-client's models load when a collection is
created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.retrieval.store.protocol import DENSE, SPARSE, full_scan_threshold_kb

# "none": float32 vectors only; "int8": int8 copies in RAM for the search.
QUANTIZATIONS = ("none", "int8")


@dataclass(frozen=True, kw_only=True)
class Layout:
    shards: int
    replication: int
    on_disk_payload: bool
    on_disk_vectors: bool
    quantization: str  # one of QUANTIZATIONS
    hnsw_m: int
    hnsw_ef_construct: int

    def create_options(self, dense_size: int) -> dict[str, Any]:
        """qdrant-client's create_collection arguments for vectors of `dense_size`."""
        from qdrant_client import models  # heavy: qdrant-client, only when creating

        return {
            "vectors_config": {
                DENSE: models.VectorParams(
                    size=dense_size, distance=models.Distance.COSINE, on_disk=self.on_disk_vectors
                )
            },
            "sparse_vectors_config": {
                SPARSE: models.SparseVectorParams(
                    modifier=models.Modifier.IDF,
                    index=models.SparseIndexParams(on_disk=self.on_disk_vectors),
                )
            },
            "shard_number": self.shards,
            "replication_factor": self.replication,
            "on_disk_payload": self.on_disk_payload,
            "quantization_config": self._quantization(models),
            # Filtered searches stay exact up to EXACT_SEARCH_POINTS matches.
            "hnsw_config": models.HnswConfigDiff(
                full_scan_threshold=full_scan_threshold_kb(dense_size),
                m=self.hnsw_m,
                ef_construct=self.hnsw_ef_construct,
            ),
            # No HNSW graph for segments too small for it to be used (see EdgeStore): the
            # server's indexing CPU goes where it matters.
            "optimizers_config": models.OptimizersConfigDiff(
                indexing_threshold=full_scan_threshold_kb(dense_size)
            ),
        }

    def _quantization(self, models: Any) -> Any:
        if self.quantization != "int8":
            return None
        # int8 copies of the vectors stay in RAM for the search; the float32 originals (on
        # disk with on_disk_vectors) only rescore the best candidates.
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, always_ram=True
            )
        )
