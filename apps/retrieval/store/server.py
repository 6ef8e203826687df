"""ServerStore: the VectorStore on a Qdrant server (or cluster) through qdrant-client.

Production points QDRANT_URL at the server; tests use qdrant-client's in-process
`:memory:` mode, which speaks the same client API (RRF with an explicit k included).
The client, its errors and snapshots are in server_client.py, how a new collection is
laid out in layout.py, and the VectorStore half it shares with EdgeStore in engine.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import apps.retrieval.store.engine as engine
from apps.retrieval.store.engine import EngineStore
from apps.retrieval.store.layout import Layout
from apps.retrieval.store.protocol import (
    DENSE,
    INDEXED_FIELDS,
    Filter,
    Point,
    ScoredPoint,
    SparseVector,
    StoreError,
    StoreUnavailable,
    check_dense_size,
)
from apps.retrieval.store.server_client import ServerCollection


def _models() -> Any:
    from qdrant_client import models  # heavy: qdrant-client, loaded on the first call

    return models


class ServerStore(ServerCollection, EngineStore):
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
        super().__init__(
            url=url, api_key=api_key, location=location, collection=collection, timeout=timeout
        )
        self._layout = Layout(
            shards=shards,
            replication=replication,
            on_disk_payload=on_disk_payload,
            on_disk_vectors=on_disk_vectors,
            quantization=quantization,
            hnsw_m=hnsw_m,
            hnsw_ef_construct=hnsw_ef_construct,
        )
        self._dense_size: int | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def ensure_collection(self, *, dense_size: int) -> None:
        check_dense_size(dense_size)
        if not self._exists():
            options = self._layout.create_options(dense_size)
            try:
                self._call(
                    "create the collection",
                    lambda c: c.create_collection(self.collection, **options),
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
                schema = _models().PayloadSchemaType(kind)
                self._call(
                    f"create the payload index on {name}",
                    lambda c, name=name, schema=schema: c.create_payload_index(
                        self.collection, field_name=name, field_schema=schema, wait=True
                    ),
                )
        self._dense_size = dense_size

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
        # A server runs its optimisers itself, in threads of its own; nothing to trigger.
        return None

    def index_state(self) -> dict[str, Any]:
        if not self._exists():
            return {"backend": "server", "points": 0, "segments": 0, "indexed_vectors": 0}
        info = self._call("read the collection", lambda c: c.get_collection(self.collection))
        return {
            "backend": "server",
            "points": int(info.points_count or 0),
            "segments": int(info.segments_count or 0),
            "indexed_vectors": int(info.indexed_vectors_count or 0),
            # green: graphs built; yellow: the server's optimisers are at work (search
            # goes on); grey: optimisation pending until the next update.
            "status": str(getattr(info.status, "value", info.status)),
            "building": str(getattr(info.status, "value", info.status)) == "yellow",
        }

    # --- conversions --------------------------------------------------------------------
    # A query is (what to search with, the named vector it is in) as query_points and
    # Prefetch take them; RRF searches no named vector.

    def _filter(self, flt: Filter, what: str) -> Any:
        models = _models()
        conditions = flt.require(what)
        return models.Filter(
            must=[
                models.FieldCondition(key=name, match=models.MatchAny(any=values))
                for name, values in conditions.items()
            ]
        )

    def _sparse(self, vector: SparseVector) -> Any:
        return _models().SparseVector(indices=list(vector.indices), values=list(vector.values))

    def _nearest(self, vector: Any, using: str) -> Any:
        return vector, using

    def _prefetch(self, query: Any, *, f: Any, limit: int) -> Any:
        vector, using = query
        return _models().Prefetch(query=vector, using=using, filter=f, limit=limit)

    def _rrf(self, k: int) -> Any:
        models = _models()
        return models.RrfQuery(rrf=models.Rrf(k=k)), None

    # --- writes -------------------------------------------------------------------------

    def _store(self, points: Sequence[Point]) -> None:
        models = _models()
        structs = [
            models.PointStruct(
                id=engine.point_id(p),
                vector=self._vectors(p),
                payload=dict(p.payload),
            )
            for p in points
        ]
        # wait=True: the call returns once the server has applied (and logged) the batch.
        self._call(
            f"store {len(structs)} points",
            lambda c: c.upsert(self.collection, points=structs, wait=True),
        )

    def delete(self, flt: Filter) -> None:
        f = self._filter(flt, "delete")
        selector = _models().FilterSelector(filter=f)
        self._read(
            "delete points",
            lambda c: c.delete(self.collection, points_selector=selector, wait=True),
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

    def _search(
        self, what: str, *, f: Any, limit: int, query: Any, prefetch: list[Any] | None = None
    ) -> list[ScoredPoint]:
        vector, using = query
        found = self._read(
            what,
            lambda c: (
                c.query_points(
                    self.collection,
                    query=vector,
                    using=using,
                    prefetch=prefetch,
                    query_filter=f,
                    limit=limit,
                    with_payload=True,
                ).points
            ),
            [],
        )
        return engine.scored(found)

    def count(self, flt: Filter) -> int:
        f = self._filter(flt, "count")
        return int(
            self._read(
                "count points",
                lambda c: c.count(self.collection, count_filter=f, exact=True).count,
                0,
            )
        )

    def _scroll(self, f: Any, *, limit: int, offset: str | None) -> tuple[list[Any], Any]:
        start = engine.scroll_offset(offset)
        records, next_offset = self._read(
            "scroll points",
            lambda c: c.scroll(
                self.collection,
                scroll_filter=f,
                limit=limit,
                offset=start,
                with_payload=True,
                with_vectors=False,
            ),
            ([], None),
        )
        return records, next_offset
