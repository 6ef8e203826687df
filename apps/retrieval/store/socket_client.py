"""SocketStore: the VectorStore of every process that is not the owner.

It forwards each call to `manage.py vectorstore` over its Unix socket. One connection per
thread (a connection carries one request at a time), opened lazily and re-opened after
the owner restarts or after this process forks (Celery prefork children inherit the
parent's socket; two processes sharing one stream would interleave their frames).

Nothing here waits forever: a missing socket or a refused connection fails at once, and
every send/receive has VECTOR_TIMEOUT_SECONDS; both become StoreUnavailable.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import apps.retrieval.store.wire as wire
from apps.retrieval.store.protocol import (
    Filter,
    Point,
    ScoredPoint,
    SparseVector,
    StoreError,
    StoreUnavailable,
    check_limit,
    check_points,
)

# The error a reply's "kind" names (wire.py); the owner sends only these two.
ERROR_KINDS: Mapping[str, type[StoreError]] = {
    "StoreError": StoreError,
    "StoreUnavailable": StoreUnavailable,
}

# Optimising a large shard rebuilds HNSW graphs and can take minutes; the everyday
# timeout would give up on it while the owner keeps working.
OPTIMIZE_TIMEOUT_SECONDS = 3600.0


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pid = os.getpid()


class SocketStore:
    def __init__(self, *, path: Path | str, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        self._local = threading.local()

    def _unavailable(self, why: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"the vector store is not running (manage.py vectorstore); {why} [socket {self.path}]"
        )

    # --- connection -----------------------------------------------------------------------

    def _connect(self) -> _Connection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except FileNotFoundError as err:
            sock.close()
            raise self._unavailable("its socket does not exist") from err
        except ConnectionRefusedError as err:
            sock.close()
            raise self._unavailable("nobody accepts connections on its socket") from err
        except TimeoutError as err:
            sock.close()
            raise self._unavailable(
                f"it did not accept a connection in {self.timeout:g} s"
            ) from err
        except OSError as err:
            sock.close()
            raise self._unavailable(f"cannot connect to its socket ({err})") from err
        return _Connection(sock)

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.pid != os.getpid():
            # Inherited through fork: close only our copy of the descriptor (no
            # shutdown(), which would cut the parent's stream too) and start afresh.
            conn.sock.close()
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn: _Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.sock.close()
            except OSError:
                pass

    def _request(self, op: str, args: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        frame = wire.pack({"op": op, "args": dict(args)})
        # Every operation is idempotent (upsert by id, delete/set_payload by filter,
        # reads), so a request that met a stale connection, e.g. after the owner
        # restarted, is sent once more on a fresh one.
        for attempt in (1, 2):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection()
            try:
                conn.sock.settimeout(timeout or self.timeout)
                conn.sock.sendall(frame)
                reply = wire.recv_frame(conn.sock)
                if reply is None:
                    raise wire.FrameError("the owner closed the connection")
            except TimeoutError as err:
                # The reply may still come later and would be read as the answer to the
                # next request: this connection is unusable.
                self._drop()
                raise self._unavailable(
                    f"it did not answer {op} within {timeout or self.timeout:g} s"
                ) from err
            except (OSError, wire.FrameError) as err:
                self._drop()
                if attempt == 1 and reused:
                    continue
                raise self._unavailable(f"the connection broke during {op} ({err})") from err
            finally:
                if getattr(self._local, "conn", None) is not None:
                    conn.sock.settimeout(self.timeout)
            if not isinstance(reply, dict):
                self._drop()
                raise StoreError(f"the vector store sent an unreadable reply to {op}")
            if "error" in reply:
                kind = ERROR_KINDS.get(str(reply.get("kind")), StoreError)
                raise kind(str(reply["error"]))
            return reply.get("ok")
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> dict[str, Any]:
        return dict(self._request("ping", {}))

    # --- VectorStore --------------------------------------------------------------------
    # Filters are checked here too, so a refused filter never costs a round trip; the
    # owner checks them again, it trusts nobody.

    def ensure_collection(self, *, dense_size: int) -> None:
        self._request("ensure_collection", {"dense_size": dense_size})

    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        check_points(points)
        # Returns only after the owner replied, i.e. after the batch is in its WAL.
        self._request("upsert", {"points": [wire.point_out(p) for p in points]})

    def delete(self, flt: Filter) -> None:
        flt.require("delete")
        self._request("delete", {"flt": wire.filter_out(flt)})

    def set_payload(self, flt: Filter, payload: Mapping[str, Any]) -> None:
        flt.require("payload update")
        self._request("set_payload", {"flt": wire.filter_out(flt), "payload": dict(payload)})

    def query_dense(self, vector: Sequence[float], *, flt: Filter, limit: int) -> list[ScoredPoint]:
        flt.require("search")
        check_limit(limit, "query_dense")
        reply = self._request(
            "query_dense", {"vector": list(vector), "flt": wire.filter_out(flt), "limit": limit}
        )
        return wire.scored_in(reply)

    def query_sparse(self, vector: SparseVector, *, flt: Filter, limit: int) -> list[ScoredPoint]:
        flt.require("search")
        check_limit(limit, "query_sparse")
        reply = self._request(
            "query_sparse",
            {"vector": wire.sparse_out(vector), "flt": wire.filter_out(flt), "limit": limit},
        )
        return wire.scored_in(reply)

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
        flt.require("search")
        check_limit(limit, "query_hybrid")
        sent = {
            "dense": list(dense),
            "sparse": wire.sparse_out(sparse),
            "flt": wire.filter_out(flt),
            "limit": limit,
            "prefetch_limit": prefetch_limit,
            "rrf_k": rrf_k,
        }
        return wire.scored_in(self._request("query_hybrid", sent))

    def count(self, flt: Filter) -> int:
        flt.require("count")
        return int(self._request("count", {"flt": wire.filter_out(flt)}))

    def scroll(
        self, flt: Filter, *, limit: int, offset: str | None = None
    ) -> tuple[list[ScoredPoint], str | None]:
        flt.require("scroll")
        check_limit(limit, "scroll")
        page, next_offset = self._request(
            "scroll", {"flt": wire.filter_out(flt), "limit": limit, "offset": offset}
        )
        return wire.scored_in(page), next_offset

    def optimize(self) -> None:
        self._request("optimize", {}, timeout=max(self.timeout, OPTIMIZE_TIMEOUT_SECONDS))

    def index_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self._request("index_state", {})
        return state

    def close(self) -> None:
        """Closes this thread's connection; the owner keeps running."""
        self._drop()
