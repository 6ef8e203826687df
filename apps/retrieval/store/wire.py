"""The owner's Unix-socket protocol: length-prefixed msgpack frames.

A frame is a 4-byte big-endian length followed by that many bytes of msgpack. A request
is {"op": name, "args": {...}}; a reply is {"ok": result} or
{"error": message, "kind": "StoreError" | "StoreUnavailable"}. Values on the wire are
plain msgpack types: the dataclasses of protocol.py are flattened here and rebuilt on
the other side, in one place for both ends.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import msgpack

from apps.retrieval.store.protocol import Filter, Point, ScoredPoint, SparseVector, StoreError

HEADER = struct.Struct(">I")
# Big enough for an upsert batch of a few thousand 1024-d points with their text; small
# enough that a garbage length (a stray client) cannot make the owner allocate gigabytes.
MAX_FRAME = 256 * 1024 * 1024

# The operations the owner serves: the VectorStore protocol minus close(), plus ping.
OPS = frozenset(
    {
        "ping",
        "ensure_collection",
        "upsert",
        "delete",
        "set_payload",
        "query_dense",
        "query_sparse",
        "query_hybrid",
        "count",
        "scroll",
        "optimize",
        "index_state",
    }
)


class FrameError(Exception):
    """The byte stream is not a valid frame (peer closed mid-frame, or sent garbage)."""


def pack(obj: Any) -> bytes:
    try:
        body = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as err:
        # e.g. a datetime or a set in a payload: only JSON-like values can be stored.
        raise StoreError(f"cannot send this to the vector store: {err}") from err
    if len(body) > MAX_FRAME:
        raise StoreError(f"message of {len(body)} bytes exceeds the {MAX_FRAME}-byte frame limit")
    return HEADER.pack(len(body)) + body


def _recv_exact(sock: socket.socket, size: int, *, at_start: bool) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            if at_start and not chunks:
                return None  # clean end of stream between frames
            raise FrameError("connection closed in the middle of a message")
        chunks += chunk
    return bytes(chunks)


def recv_frame(sock: socket.socket) -> Any | None:
    """The next decoded frame, or None when the peer closed the connection cleanly."""
    header = _recv_exact(sock, HEADER.size, at_start=True)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
    body = _recv_exact(sock, size, at_start=False)
    try:
        return msgpack.unpackb(body, raw=False)
    except Exception as err:
        raise FrameError(f"undecodable message: {err}") from err


# --- values ---------------------------------------------------------------------------


def filter_out(flt: Filter) -> dict[str, Any]:
    return {"must": {name: list(values) for name, values in dict(flt.must).items()}}


def filter_in(data: Any) -> Filter:
    if not isinstance(data, dict) or not isinstance(data.get("must"), dict):
        # Decoded as an empty filter, which every operation refuses.
        return Filter(must={})
    return Filter(
        must={str(k): list(v) if isinstance(v, list) else v for k, v in data["must"].items()}
    )


def sparse_out(vector: SparseVector) -> list[list[Any]]:
    return [list(vector.indices), list(vector.values)]


def sparse_in(data: Any) -> SparseVector:
    indices, values = data
    return SparseVector(indices=list(indices), values=list(values))


def point_out(p: Point) -> list[Any]:
    return [p.id, list(p.dense), sparse_out(p.sparse), p.payload]


def point_in(data: Any) -> Point:
    pid, dense, sparse, payload = data
    return Point(id=pid, dense=list(dense), sparse=sparse_in(sparse), payload=dict(payload))


def scored_out(points: list[ScoredPoint]) -> list[list[Any]]:
    return [[p.id, p.score, p.payload] for p in points]


def scored_in(data: Any) -> list[ScoredPoint]:
    return [
        ScoredPoint(id=pid, score=float(score), payload=payload) for pid, score, payload in data
    ]
