"""The one small interface every vector backend implements, and the values it speaks.

Nothing heavy is imported here: the web process imports this module to build filters and
catch `StoreError` without paying for qdrant-client or qdrant-edge.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Names inside the one Qdrant collection. Both backends and the owner process use these.
DENSE = "dense"
SPARSE = "bm25"

# Payload fields that get an index, and the index type. Access control filters on
# collection_id/groups; deletes and payload updates on document_id; routing reads label;
# every search and a version's drop on embedder (apps/retrieval/versions.py).
INDEXED_FIELDS: Mapping[str, str] = {
    "collection_id": "integer",
    "document_id": "integer",
    "embedder": "integer",
    "groups": "integer",
    "label": "keyword",
}

# Filtered searches whose filter matches up to this many points in a segment are answered
# by exact (brute-force) scoring of the matching points instead of the HNSW graph. HNSW
# recall under tight filters was only 0.66-0.85 (STACK.md), exact scoring of 100k 384-d
# vectors is a few milliseconds, so we stay exact well past the 100k the product needs.
EXACT_SEARCH_POINTS = 200_000


def full_scan_threshold_kb(dense_size: int, *, points: int = EXACT_SEARCH_POINTS) -> int:
    """Qdrant's HNSW `full_scan_threshold` is in kilobytes of vector data, not points:
    the planner compares the estimated number of matching points times the vector size
    with it. Convert our point count for this vector size (float32 storage)."""
    return math.ceil(points * dense_size * 4 / 1024)


class StoreError(Exception):
    """A vector store operation failed; the message says why in plain words."""


class StoreUnavailable(StoreError):
    """The owner process or the server cannot be reached or did not answer in time.

    Transient by nature: callers retry later (ingestion re-queues, chat says so).
    """


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Point:
    id: str  # a UUID string, derived from (document id, chunk number) by the caller
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True)
class ScoredPoint:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Filter:
    """Every field must match one of its values; an array payload field matches when
    any of its elements does (`groups=[3, 5]` matches a point whose groups contain 3).

    An empty filter is representable on purpose, so that the store, not each caller,
    is the place that refuses it (see `require`).
    """

    must: Mapping[str, Sequence[int | str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A private copy with tuple values: the filter cannot change after it was built
        # (a caller appending to its list later), and equal filters compare and hash equal.
        # Any iterable of values (a list, a set, a QuerySet of ids) becomes a tuple; a
        # string or anything else is kept as given, for require() to refuse.
        frozen = {
            name: tuple(values)
            if isinstance(values, Iterable) and not isinstance(values, str | bytes | Mapping)
            else values
            for name, values in dict(self.must).items()
        }
        object.__setattr__(self, "must", frozen)

    def __hash__(self) -> int:
        return hash(tuple(sorted((str(k), repr(v)) for k, v in self.must.items())))

    @classmethod
    def of(cls, **fields: Sequence[int | str]) -> Filter:
        return cls(must=fields)

    def require(self, what: str) -> dict[str, list[int] | list[str]]:
        """The validated conditions, or StoreError: the store fails closed.

        An empty list of readable collections must never degrade into "no filter", so a
        filter without fields, or with a field without values, is refused outright.
        """
        if not self.must:
            raise StoreError(f"refusing an unfiltered {what}: the filter has no fields")
        checked: dict[str, list[int] | list[str]] = {}
        for name, values in self.must.items():
            if not isinstance(name, str) or not name:
                raise StoreError(f"refusing {what}: filter field name {name!r} is not a string")
            if isinstance(values, str | bytes) or not isinstance(values, Sequence):
                raise StoreError(
                    f"refusing {what}: filter field {name!r} needs a list of values, "
                    f"got {type(values).__name__}"
                )
            vals = list(values)
            if not vals:
                raise StoreError(
                    f"refusing an unfiltered {what}: filter field {name!r} has no values"
                )
            # bool is an int in Python; True would silently match 1, so it is refused.
            if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                checked[name] = [int(v) for v in vals]
            elif all(isinstance(v, str) for v in vals):
                checked[name] = [str(v) for v in vals]
            else:
                raise StoreError(
                    f"refusing {what}: filter field {name!r} must hold only integers or "
                    f"only strings, got {vals!r}"
                )
        return checked


@runtime_checkable
class VectorStore(Protocol):
    def ensure_collection(self, *, dense_size: int) -> None: ...

    def upsert(self, points: Sequence[Point]) -> None: ...

    def delete(self, flt: Filter) -> None: ...

    def set_payload(self, flt: Filter, payload: Mapping[str, Any]) -> None: ...

    def query_dense(
        self, vector: Sequence[float], *, flt: Filter, limit: int
    ) -> list[ScoredPoint]: ...

    def query_sparse(
        self, vector: SparseVector, *, flt: Filter, limit: int
    ) -> list[ScoredPoint]: ...

    def query_hybrid(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        *,
        flt: Filter,
        limit: int,
        prefetch_limit: int,
        rrf_k: int,
    ) -> list[ScoredPoint]: ...

    def count(self, flt: Filter) -> int: ...

    def scroll(
        self, flt: Filter, *, limit: int, offset: str | None = None
    ) -> tuple[list[ScoredPoint], str | None]:
        """One page in point-id order and the offset of the next (None at the end).
        Scrolled points carry score 0.0: there is no query to score against."""
        ...

    def optimize(self) -> None:
        """Build the vector graphs now; search goes on meanwhile (the embedded owner
        builds in a child process, a Qdrant server in its own threads)."""
        ...

    def index_state(self) -> dict[str, Any]:
        """Points, segments, vectors in graphs, and any graph build under way: for
        /readyz and the admin page."""
        ...

    def close(self) -> None: ...


def check_dense_size(dense_size: int) -> None:
    if isinstance(dense_size, bool) or not isinstance(dense_size, int) or dense_size < 1:
        raise StoreError(f"dense_size must be a positive integer, got {dense_size!r}")


def as_uuid(value: Any, *, error: str) -> str:
    """A point id as both engines store it (a UUID in one spelling), or StoreError(error)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError) as err:
        raise StoreError(error) from err


def check_limit(limit: int, what: str) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise StoreError(f"{what}: limit must be a positive integer, got {limit!r}")
    return limit


def check_points(points: Sequence[Point], *, dense_size: int | None = None) -> None:
    """Catch malformed points before they reach an engine whose message would be cryptic."""
    for p in points:
        if not isinstance(p, Point):
            raise StoreError(f"upsert takes Point values, got {type(p).__name__}")
        if dense_size is not None and len(p.dense) != dense_size:
            raise StoreError(
                f"point {p.id} has a {len(p.dense)}-dimensional dense vector; "
                f"the collection holds {dense_size}-dimensional vectors"
            )
        if len(p.sparse.indices) != len(p.sparse.values):
            raise StoreError(f"point {p.id} has a sparse vector with mismatched lengths")
