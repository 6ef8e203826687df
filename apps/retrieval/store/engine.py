"""What the two backends that drive a Qdrant engine share: EdgeStore (qdrant-edge, in the
owner process) and ServerStore (qdrant-client).

`EngineStore` holds the VectorStore operations whose arguments, filter checks and result
records are the same for both engines; a backend supplies only how its engine spells a
filter, a query and a request. Nothing heavy is imported here: the engines' own types stay
in their backends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

from apps.retrieval.store.protocol import (
    DENSE,
    SPARSE,
    Filter,
    Point,
    ScoredPoint,
    SparseVector,
    as_uuid,
    check_limit,
    check_points,
)


class EngineStore(ABC):
    """The shared half of a VectorStore on a Qdrant engine. Subclasses set `_dense_size`
    once the collection's vector size is known."""

    _dense_size: int | None = None

    # --- what each engine spells its own way -----------------------------------------------

    @abstractmethod
    def _filter(self, flt: Filter, what: str) -> Any:
        """The engine's filter for `flt`, after flt.require(what) refused an empty one."""

    @abstractmethod
    def _sparse(self, vector: SparseVector) -> Any: ...

    @abstractmethod
    def _nearest(self, vector: Any, using: str) -> Any:
        """The engine's query for the points nearest `vector` in the named vector `using`."""

    @abstractmethod
    def _prefetch(self, query: Any, *, f: Any, limit: int) -> Any: ...

    @abstractmethod
    def _rrf(self, k: int) -> Any: ...

    @abstractmethod
    def _search(
        self, what: str, *, f: Any, limit: int, query: Any, prefetch: list[Any] | None = None
    ) -> list[ScoredPoint]:
        """Run one query (with payloads); nothing found when there is no collection yet."""

    @abstractmethod
    def _store(self, points: Sequence[Point]) -> None:
        """Write checked points; returns once the engine has them durably."""

    @abstractmethod
    def _scroll(self, f: Any, *, limit: int, offset: str | None) -> tuple[list[Any], Any]:
        """One page of the engine's records and its next offset."""

    def _vectors(self, p: Point) -> dict[str, Any]:
        """The point's vectors by name for the engine; the sparse one only when it has
        terms (a chunk of stop words alone has none)."""
        vectors: dict[str, Any] = {DENSE: list(p.dense)}
        if p.sparse.indices:
            vectors[SPARSE] = self._sparse(p.sparse)
        return vectors

    # --- VectorStore ------------------------------------------------------------------------

    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        check_points(points, dense_size=self._dense_size)
        self._store(points)

    def query_dense(self, vector: Sequence[float], *, flt: Filter, limit: int) -> list[ScoredPoint]:
        f = self._filter(flt, "search")
        check_limit(limit, "query_dense")
        query = self._nearest(list(vector), DENSE)
        return self._search("search dense vectors", f=f, limit=limit, query=query)

    def query_sparse(self, vector: SparseVector, *, flt: Filter, limit: int) -> list[ScoredPoint]:
        f = self._filter(flt, "search")
        check_limit(limit, "query_sparse")
        if not vector.indices:
            return []  # no query terms: no keyword match is possible
        query = self._nearest(self._sparse(vector), SPARSE)
        return self._search("search sparse vectors", f=f, limit=limit, query=query)

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
        f = self._filter(flt, "search")
        check_limit(limit, "query_hybrid")
        check_limit(prefetch_limit, "query_hybrid prefetch")
        check_limit(rrf_k, "query_hybrid rrf_k")
        # The filter sits inside every prefetch: each candidate list is drawn only from
        # readable points, so a hidden point can neither appear nor push a readable one out
        # of the top prefetch_limit. The outer filter repeats it as a second lock. RRF runs
        # in the engine, with an explicit k.
        halves = [self._nearest(list(dense), DENSE)]
        if sparse.indices:
            halves.append(self._nearest(self._sparse(sparse), SPARSE))
        prefetch = [self._prefetch(h, f=f, limit=prefetch_limit) for h in halves]
        return self._search(
            "run the hybrid search",
            f=f,
            limit=limit,
            query=self._rrf(rrf_k),
            prefetch=prefetch,
        )

    def scroll(
        self, flt: Filter, *, limit: int, offset: str | None = None
    ) -> tuple[list[ScoredPoint], str | None]:
        f = self._filter(flt, "scroll")
        check_limit(limit, "scroll")
        records, next_offset = self._scroll(f, limit=limit, offset=offset)
        page = [
            ScoredPoint(id=str(r.id), score=0.0, payload=dict(r.payload or {})) for r in records
        ]
        return page, (str(next_offset) if next_offset is not None else None)


# --- shared by the two engines' own halves ---------------------------------------------------


def point_id(p: Point) -> str:
    """The point's id in the one spelling both engines store (a lower-case UUID)."""
    return as_uuid(p.id, error=f"point id {p.id!r} is not a UUID string")


def scroll_offset(offset: str | None) -> str | None:
    if offset is None:
        return None
    return as_uuid(offset, error=f"scroll offset {offset!r} is not a point id")


def scored(points: Iterable[Any]) -> list[ScoredPoint]:
    """An engine's scored points (id, score, payload) as ours."""
    return [
        ScoredPoint(id=str(p.id), score=float(p.score), payload=dict(p.payload or {}))
        for p in points
    ]
