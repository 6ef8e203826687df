"""ServerStore: a Qdrant server (or cluster) through qdrant-client.

Production points QDRANT_URL at the server; tests use qdrant-client's in-process
`:memory:` mode, which speaks the same client API (RRF with an explicit k included).
Client and transport errors become StoreError / StoreUnavailable here, so no qdrant or
httpx exception type reaches the callers.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from apps.retrieval.store.protocol import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    Filter,
    Point,
    ScoredPoint,
    SparseVector,
    StoreError,
    StoreUnavailable,
    check_limit,
    check_points,
    full_scan_threshold_kb,
)

T = TypeVar("T")

# Statuses that mean "the server (or a proxy in front of it) is not able to answer now",
# as opposed to "the request is wrong": the caller should retry later.
_UNAVAILABLE_STATUSES = {408, 429, 502, 503, 504}


class ServerStore:
    def __init__(
        self,
        *,
        url: str = "",
        api_key: str = "",
        location: str | None = None,
        collection: str = "enclave_chunks",
        shards: int = 1,
        replication: int = 1,
        timeout: float = 30.0,
        on_disk_payload: bool = True,
        on_disk_vectors: bool = False,
        quantization: str = "none",
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
    ) -> None:
        if not url and not location:
            raise StoreError("ServerStore needs a url (QDRANT_URL) or a location (':memory:')")
        self.url = url
        self.location = location
        self.collection = collection
        self._api_key = api_key or None
        self._shards = shards
        self._replication = replication
        # Layout of a collection this store creates (see README "Production").
        self._on_disk_payload = on_disk_payload
        self._on_disk_vectors = on_disk_vectors
        self._quantization = quantization
        self._hnsw_m = hnsw_m
        self._hnsw_ef_construct = hnsw_ef_construct
        self._timeout = max(1, math.ceil(timeout))
        self._client_lock = threading.Lock()
        self._client: Any = None
        self._dense_size: int | None = None

    @property
    def _where(self) -> str:
        return self.url or f"local Qdrant {self.location}"

    def _get_client(self) -> Any:
        # Built on first use, so get_store() and the web process's start never touch the
        # network; check_compatibility would make a request at construction.
        with self._client_lock:
            if self._client is None:
                from qdrant_client import QdrantClient

                if self.location:
                    self._client = QdrantClient(location=self.location)
                else:
                    self._client = QdrantClient(
                        url=self.url,
                        api_key=self._api_key,
                        timeout=self._timeout,
                        check_compatibility=False,
                    )
            return self._client

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            return fn(self._get_client())
        except StoreError:
            raise
        except (
            ResponseHandlingException,
            httpx.TransportError,
            ConnectionError,
            TimeoutError,
        ) as err:
            source = getattr(err, "source", err)
            raise StoreUnavailable(
                f"the Qdrant server at {self._where} did not answer while trying to {what} "
                f"({type(source).__name__}: {source}); check QDRANT_URL and that it is running"
            ) from err
        except UnexpectedResponse as err:
            detail = _response_detail(err)
            if err.status_code in _UNAVAILABLE_STATUSES:
                raise StoreUnavailable(
                    f"the Qdrant server at {self._where} is unavailable while trying to {what} "
                    f"(HTTP {err.status_code}: {detail})"
                ) from err
            raise StoreError(
                f"the Qdrant server refused to {what} (HTTP {err.status_code}: {detail})"
            ) from err
        except Exception as err:
            raise StoreError(f"vector store could not {what}: {err}") from err

    def _exists(self) -> bool:
        return bool(
            self._call("check the collection", lambda c: c.collection_exists(self.collection))
        )

    def _read(self, what: str, fn: Callable[[Any], T], empty: T) -> T:
        """A read on a collection that does not exist yet finds nothing (fresh install).

        Only when the read fails do we pay a round trip to learn whether that is why.
        """
        try:
            return self._call(what, fn)
        except StoreUnavailable:
            raise
        except StoreError:
            if not self._exists():
                return empty
            raise

    # --- lifecycle ----------------------------------------------------------------------

    def ensure_collection(self, *, dense_size: int) -> None:
        from qdrant_client import models

        if isinstance(dense_size, bool) or not isinstance(dense_size, int) or dense_size < 1:
            raise StoreError(f"dense_size must be a positive integer, got {dense_size!r}")
        if not self._exists():
            try:
                self._call(
                    "create the collection",
                    lambda c: c.create_collection(
                        self.collection,
                        vectors_config={
                            DENSE: models.VectorParams(
                                size=dense_size,
                                distance=models.Distance.COSINE,
                                on_disk=self._on_disk_vectors,
                            )
                        },
                        sparse_vectors_config={
                            SPARSE: models.SparseVectorParams(
                                modifier=models.Modifier.IDF,
                                index=models.SparseIndexParams(on_disk=self._on_disk_vectors),
                            )
                        },
                        shard_number=self._shards,
                        replication_factor=self._replication,
                        on_disk_payload=self._on_disk_payload,
                        quantization_config=self._quantization_config(),
                        # Filtered searches stay exact up to EXACT_SEARCH_POINTS matches.
                        hnsw_config=models.HnswConfigDiff(
                            full_scan_threshold=full_scan_threshold_kb(dense_size),
                            m=self._hnsw_m,
                            ef_construct=self._hnsw_ef_construct,
                        ),
                        # No HNSW graph for segments too small for it to be used (see
                        # EdgeStore): the server's indexing CPU goes where it matters.
                        optimizers_config=models.OptimizersConfigDiff(
                            indexing_threshold=full_scan_threshold_kb(dense_size)
                        ),
                    ),
                )
            except StoreUnavailable:
                raise
            except StoreError:
                # Two workers may race to create it; losing that race is fine.
                if not self._exists():
                    raise
        self._check_size(dense_size)
        if not self.location:
            # Local mode ignores payload indexes (and warns); a server needs them for
            # fast filters. Creating an existing index is a no-op on the server.
            for name, kind in INDEXED_FIELDS.items():
                schema = models.PayloadSchemaType(kind)
                self._call(
                    f"create the payload index on {name}",
                    lambda c, name=name, schema=schema: c.create_payload_index(
                        self.collection, field_name=name, field_schema=schema, wait=True
                    ),
                )
        self._dense_size = dense_size

    def _quantization_config(self) -> Any:
        from qdrant_client import models

        if self._quantization != "int8":
            return None
        # int8 copies of the vectors stay in RAM for the search; the float32 originals
        # (on disk with on_disk_vectors) only rescore the best candidates.
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, always_ram=True
            )
        )

    def _check_size(self, dense_size: int) -> None:
        info = self._call("read the collection", lambda c: c.get_collection(self.collection))
        vectors = info.config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if params is None:
            raise StoreError(
                f"the Qdrant collection {self.collection!r} has no {DENSE!r} vector; "
                "it was not created by Enclave"
            )
        if params.size != dense_size:
            raise StoreError(
                f"the Qdrant collection {self.collection!r} holds {params.size}-dimensional "
                f"vectors, but the embedding model makes {dense_size}-dimensional ones"
            )

    def optimize(self) -> None:
        # A server runs its optimisers itself; there is nothing to trigger.
        return None

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: S110 - closing is best effort; nothing to report
                pass

    # --- conversions --------------------------------------------------------------------

    @staticmethod
    def _filter(flt: Filter, what: str) -> Any:
        from qdrant_client import models

        conditions = flt.require(what)
        return models.Filter(
            must=[
                models.FieldCondition(key=name, match=models.MatchAny(any=values))
                for name, values in conditions.items()
            ]
        )

    @staticmethod
    def _sparse(vector: SparseVector) -> Any:
        from qdrant_client import models

        return models.SparseVector(indices=list(vector.indices), values=list(vector.values))

    @staticmethod
    def _scored(points: Sequence[Any]) -> list[ScoredPoint]:
        return [
            ScoredPoint(id=str(p.id), score=float(p.score), payload=dict(p.payload or {}))
            for p in points
        ]

    # --- writes -------------------------------------------------------------------------

    def upsert(self, points: Sequence[Point]) -> None:
        from qdrant_client import models

        if not points:
            return
        check_points(points, dense_size=self._dense_size)
        structs = []
        for p in points:
            try:
                pid = str(uuid.UUID(p.id))
            except (ValueError, TypeError, AttributeError) as err:
                raise StoreError(f"point id {p.id!r} is not a UUID string") from err
            vector: dict[str, Any] = {DENSE: list(p.dense)}
            if p.sparse.indices:
                vector[SPARSE] = self._sparse(p.sparse)
            structs.append(models.PointStruct(id=pid, vector=vector, payload=dict(p.payload)))
        # wait=True: the call returns once the server has applied (and logged) the batch.
        self._call(
            f"store {len(structs)} points",
            lambda c: c.upsert(self.collection, points=structs, wait=True),
        )

    def delete(self, flt: Filter) -> None:
        from qdrant_client import models

        f = self._filter(flt, "delete")
        self._read(
            "delete points",
            lambda c: c.delete(
                self.collection, points_selector=models.FilterSelector(filter=f), wait=True
            ),
            None,
        )

    def set_payload(self, flt: Filter, payload: Mapping[str, Any]) -> None:
        f = self._filter(flt, "payload update")
        if not payload:
            return
        self._read(
            "update payloads",
            lambda c: c.set_payload(self.collection, payload=dict(payload), points=f, wait=True),
            None,
        )

    # --- reads --------------------------------------------------------------------------

    def query_dense(self, vector: Sequence[float], *, flt: Filter, limit: int) -> list[ScoredPoint]:
        f = self._filter(flt, "search")
        check_limit(limit, "query_dense")
        result = self._read(
            "search dense vectors",
            lambda c: (
                c.query_points(
                    self.collection,
                    query=list(vector),
                    using=DENSE,
                    query_filter=f,
                    limit=limit,
                    with_payload=True,
                ).points
            ),
            [],
        )
        return self._scored(result)

    def query_sparse(self, vector: SparseVector, *, flt: Filter, limit: int) -> list[ScoredPoint]:
        f = self._filter(flt, "search")
        check_limit(limit, "query_sparse")
        if not vector.indices:
            return []  # no query terms: no keyword match is possible
        result = self._read(
            "search sparse vectors",
            lambda c: (
                c.query_points(
                    self.collection,
                    query=self._sparse(vector),
                    using=SPARSE,
                    query_filter=f,
                    limit=limit,
                    with_payload=True,
                ).points
            ),
            [],
        )
        return self._scored(result)

    def query_hybrid(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        *,
        flt: Filter,
        limit: int,
        prefetch_limit: int,
        rrf_k: int,
    ) -> list[ScoredPoint]:
        from qdrant_client import models

        f = self._filter(flt, "search")
        check_limit(limit, "query_hybrid")
        check_limit(prefetch_limit, "query_hybrid prefetch")
        check_limit(rrf_k, "query_hybrid rrf_k")
        # The filter sits inside every prefetch, so each candidate list is drawn only from
        # readable points; the outer filter repeats it. RRF runs in Qdrant (the server and
        # qdrant-client's local mode both take RrfQuery with an explicit k).
        prefetch = [models.Prefetch(query=list(dense), using=DENSE, filter=f, limit=prefetch_limit)]
        if sparse.indices:
            prefetch.append(
                models.Prefetch(
                    query=self._sparse(sparse), using=SPARSE, filter=f, limit=prefetch_limit
                )
            )
        result = self._read(
            "run the hybrid search",
            lambda c: (
                c.query_points(
                    self.collection,
                    prefetch=prefetch,
                    query=models.RrfQuery(rrf=models.Rrf(k=rrf_k)),
                    query_filter=f,
                    limit=limit,
                    with_payload=True,
                ).points
            ),
            [],
        )
        return self._scored(result)

    def count(self, flt: Filter) -> int:
        f = self._filter(flt, "count")
        return int(
            self._read(
                "count points",
                lambda c: c.count(self.collection, count_filter=f, exact=True).count,
                0,
            )
        )

    def scroll(
        self, flt: Filter, *, limit: int, offset: str | None = None
    ) -> tuple[list[ScoredPoint], str | None]:
        f = self._filter(flt, "scroll")
        check_limit(limit, "scroll")
        if offset is not None:
            try:
                offset = str(uuid.UUID(offset))
            except (ValueError, TypeError, AttributeError) as err:
                raise StoreError(f"scroll offset {offset!r} is not a point id") from err
        records, next_offset = self._read(
            "scroll points",
            lambda c: c.scroll(
                self.collection,
                scroll_filter=f,
                limit=limit,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            ),
            ([], None),
        )
        page = [
            ScoredPoint(id=str(r.id), score=0.0, payload=dict(r.payload or {})) for r in records
        ]
        return page, (str(next_offset) if next_offset is not None else None)

    # --- snapshots (manage.py vectorstore_snapshot; not part of the VectorStore protocol) --

    def snapshot_create(self) -> dict[str, Any]:
        """Have the server write a snapshot of the collection; its description."""
        if not self._exists():
            raise StoreError(f"there is no collection {self.collection!r} to snapshot")
        found = self._call(
            "create a snapshot", lambda c: c.create_snapshot(self.collection, wait=True)
        )
        if found is None:
            raise StoreError("the Qdrant server did not describe the snapshot it made")
        return _snapshot_dict(found)

    def snapshot_list(self) -> list[dict[str, Any]]:
        """The collection's snapshots on this node, oldest first."""
        found = self._call("list snapshots", lambda c: c.list_snapshots(self.collection))
        return sorted((_snapshot_dict(d) for d in found), key=lambda d: d["created"] or "")

    def snapshot_delete(self, name: str) -> None:
        self._call(
            f"delete the snapshot {name}",
            lambda c: c.delete_snapshot(self.collection, name, wait=True),
        )

    def snapshot_url(self, name: str) -> str:
        """Where the server serves the snapshot file (GET, with the api-key header)."""
        from urllib.parse import quote

        if not self.url:
            raise StoreError("a local Qdrant has no snapshot files to download")
        return (
            f"{self.url.rstrip('/')}/collections/{quote(self.collection, safe='')}"
            f"/snapshots/{quote(name, safe='')}"
        )


def _snapshot_dict(description: Any) -> dict[str, Any]:
    return {
        "name": description.name,
        "created": description.creation_time,
        "size": description.size,
        "checksum": description.checksum,
    }


def _response_detail(err: Any) -> str:
    try:
        status = err.structured().get("status")
        if isinstance(status, dict) and status.get("error"):
            return str(status["error"])
    except Exception:  # noqa: S110 - fall back to the raw text below
        pass
    return (err.reason_phrase or "").strip() or "no detail"
