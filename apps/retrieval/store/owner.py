"""The owner process: holds the EdgeStore and serves it to every other process.

qdrant-edge lets one process open a shard (the WAL is locked), while web threads and
Celery workers all need the vectors, so exactly one owner opens the shard and answers the
VectorStore protocol on a Unix socket (frames: see wire.py). Started by
`manage.py vectorstore`.

Guarantees:
- one owner per data directory (an flock on <data_dir>/.owner.lock, released by the
  kernel even on SIGKILL) and per socket (a live socket is never taken over);
- a reply to a write is sent only after EdgeStore.update() returned, i.e. after the
  operation is in the WAL, so an acknowledged write survives a SIGKILL of the owner;
- SIGTERM/SIGINT: stop accepting, remove the socket, finish the write in progress,
  close the shard;
- the HNSW graphs are built as the store grows (GraphPolicy), in a child process over a
  copy of the shard, so search goes on meanwhile (EdgeStore.build_graphs).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import apps.retrieval.store.wire as wire
from apps.retrieval.store.edge import EdgeStore
from apps.retrieval.store.protocol import EXACT_SEARCH_POINTS, StoreError, StoreUnavailable

log = logging.getLogger("enclave.vectorstore")

LOCK_FILE = ".owner.lock"
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107


class OwnerConflict(StoreError):
    """Another owner already holds the data directory or serves the socket."""


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        owner = self.server.owner
        while True:
            try:
                message = wire.recv_frame(sock)
            except wire.FrameError as err:
                log.warning("dropping a client: %s", err)
                return
            except OSError:
                return
            if message is None:
                return
            reply = owner.dispatch(message)
            try:
                frame = wire.pack(reply)
            except StoreError as err:
                frame = wire.pack({"error": str(err), "kind": "StoreError"})
            try:
                sock.sendall(frame)
            except OSError:
                return


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True  # a client that never hangs up must not block shutdown
    owner: Owner


@dataclass(frozen=True)
class GraphPolicy:
    """When the owner builds the graphs by itself (README "Capacity", settings
    VECTOR_GRAPH_*): every `check_seconds` it looks whether the store has grown by
    `every_points` since the last build (0: by the shard's own indexing threshold, below
    which the engine builds no graph anyway); a failed build is tried again after
    `retry_seconds`. `exact_search_points` is the exact-search threshold of a store
    created now. check_seconds 0 switches the automatic builds off."""

    check_seconds: float = 60.0
    every_points: int = 0
    retry_seconds: float = 3600.0
    exact_search_points: int = EXACT_SEARCH_POINTS
    # The shard is flushed this often when it was written to, so a SIGKILL replays at
    # most this much of the WAL (VECTOR_FLUSH_SECONDS); 0: only at a clean stop.
    flush_seconds: float = 10.0


class Owner:
    def __init__(
        self,
        *,
        data_dir: Path,
        socket_path: Path,
        collection: str,
        graphs: GraphPolicy | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.socket_path = Path(socket_path)
        self.collection = collection
        self.graphs = graphs or GraphPolicy()
        self._stopping = threading.Event()
        self.store: EdgeStore | None = None
        self._lock_file: IO[str] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket_inode: int | None = None
        self._closing = False

    # --- start --------------------------------------------------------------------------

    def start(self) -> None:
        """Claim the data directory and the socket, open the shard, accept connections."""
        if len(os.fsencode(str(self.socket_path))) > MAX_SOCKET_PATH:
            raise StoreError(
                f"VECTOR_SOCKET path is {len(str(self.socket_path))} bytes; Unix sockets allow "
                f"at most {MAX_SOCKET_PATH}: {self.socket_path}"
            )
        self._lock_data_dir()
        try:
            self._claim_socket()
            self.store = EdgeStore(
                path=self.data_dir / self.collection,
                exact_search_points=self.graphs.exact_search_points,
            )
            self._bind()
        except BaseException:
            self.stop()
            raise
        self._every(self.graphs.check_seconds, "graphs", self._build_if_due)
        self._every(self.graphs.flush_seconds, "flush", self._flush)

    def _every(self, seconds: float, name: str, task: Callable[[EdgeStore], None]) -> None:
        """Run `task` on the store every `seconds` (0: never) in a thread of its own, until
        the owner stops; a StoreError is logged and the next round comes as planned."""
        if seconds <= 0:
            return

        def loop() -> None:
            while not self._stopping.wait(seconds):
                store = self.store
                if store is None:
                    return
                try:
                    task(store)
                except StoreError as err:
                    if not self._stopping.is_set():
                        log.warning("%s: %s", name, err)

        threading.Thread(target=loop, name=f"vectorstore-{name}", daemon=True).start()

    def _flush(self, store: EdgeStore) -> None:
        store.flush()

    def _build_if_due(self, store: EdgeStore) -> None:
        if store.graphs_due(
            every_points=self.graphs.every_points, retry_seconds=self.graphs.retry_seconds
        ):
            log.info("the store has grown: building its graphs")
            log.info("graph build: %s", store.build_graphs(reason="grown"))

    def _lock_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / LOCK_FILE
        fh = path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise OwnerConflict(
                    f"another vectorstore owner (pid {holder}) already holds {self.data_dir}; "
                    "stop it first, only one process may open the vector data"
                ) from err
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_file = fh

    def _claim_socket(self) -> None:
        path = self.socket_path
        if not (path.exists() or path.is_symlink()):
            path.parent.mkdir(parents=True, exist_ok=True)
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2.0)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            # Left behind by an owner that died without cleaning up (SIGKILL, power cut).
            log.info("removing stale socket %s", path)
            path.unlink(missing_ok=True)
            return
        except OSError as err:
            raise OwnerConflict(f"{path} exists and is not a usable socket ({err})") from err
        finally:
            probe.close()
        raise OwnerConflict(f"another vectorstore is already serving on {path}; stop it first")

    def _bind(self) -> None:
        # Web and workers run as the same user (or group); nobody else may talk to the
        # store, which hands out every chunk of every collection.
        old = os.umask(0o117)
        try:
            server = _Server(str(self.socket_path), _Handler, bind_and_activate=True)
        finally:
            os.umask(old)
        server.owner = self
        self._server = server
        self._socket_inode = os.stat(self.socket_path).st_ino
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="vectorstore-accept"
        )
        self._thread.start()

    # --- requests -----------------------------------------------------------------------

    def dispatch(self, message: Any) -> dict[str, Any]:
        if not isinstance(message, dict):
            return {"error": "a request must be a map with op and args", "kind": "StoreError"}
        op = message.get("op")
        args = message.get("args") or {}
        if op not in wire.OPS or not isinstance(args, dict):
            return {"error": f"unknown vector store operation {op!r}", "kind": "StoreError"}
        store = self.store
        if self._closing or store is None:
            return {"error": "the vector store is shutting down", "kind": "StoreUnavailable"}
        handler: Callable[..., Any] = getattr(self, f"_op_{op}")
        try:
            return {"ok": handler(store, **args)}
        except StoreUnavailable as err:
            return {"error": str(err), "kind": "StoreUnavailable"}
        except StoreError as err:
            return {"error": str(err), "kind": "StoreError"}
        except (TypeError, ValueError, KeyError) as err:
            # Wrong argument names or shapes from a client of another version.
            return {"error": f"malformed {op} request: {err}", "kind": "StoreError"}
        except Exception as err:
            log.exception("vector store operation %s failed", op)
            return {"error": f"vector store {op} failed: {err}", "kind": "StoreError"}

    def _op_ping(self, store: EdgeStore) -> dict[str, Any]:
        return {"pid": os.getpid(), "data_dir": str(self.data_dir), "collection": self.collection}

    def _op_ensure_collection(self, store: EdgeStore, *, dense_size: int) -> None:
        store.ensure_collection(dense_size=dense_size)

    def _op_upsert(self, store: EdgeStore, *, points: list[Any]) -> None:
        store.upsert([wire.point_in(p) for p in points])

    def _op_delete(self, store: EdgeStore, *, flt: Any) -> None:
        store.delete(wire.filter_in(flt))

    def _op_set_payload(self, store: EdgeStore, *, flt: Any, payload: dict[str, Any]) -> None:
        store.set_payload(wire.filter_in(flt), payload)

    def _op_query_dense(
        self, store: EdgeStore, *, vector: list[float], flt: Any, limit: int
    ) -> Any:
        return wire.scored_out(store.query_dense(vector, flt=wire.filter_in(flt), limit=limit))

    def _op_query_sparse(self, store: EdgeStore, *, vector: Any, flt: Any, limit: int) -> Any:
        found = store.query_sparse(wire.sparse_in(vector), flt=wire.filter_in(flt), limit=limit)
        return wire.scored_out(found)

    def _op_query_hybrid(
        self,
        store: EdgeStore,
        *,
        dense: list[float],
        sparse: Any,
        flt: Any,
        limit: int,
        prefetch_limit: int,
        rrf_k: int,
    ) -> Any:
        found = store.query_hybrid(
            dense,
            wire.sparse_in(sparse),
            flt=wire.filter_in(flt),
            limit=limit,
            prefetch_limit=prefetch_limit,
            rrf_k=rrf_k,
        )
        return wire.scored_out(found)

    def _op_count(self, store: EdgeStore, *, flt: Any) -> int:
        return store.count(wire.filter_in(flt))

    def _op_scroll(self, store: EdgeStore, *, flt: Any, limit: int, offset: str | None) -> Any:
        page, next_offset = store.scroll(wire.filter_in(flt), limit=limit, offset=offset)
        return [wire.scored_out(page), next_offset]

    def _op_optimize(self, store: EdgeStore) -> None:
        store.optimize()

    def _op_index_state(self, store: EdgeStore) -> dict[str, Any]:
        return {**store.index_state(), "checked_every_seconds": self.graphs.check_seconds}

    # --- stop ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Idempotent; safe after a partial start()."""
        self._closing = True
        self._stopping.set()
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            if thread is not None:
                server.shutdown()  # ends serve_forever in its thread; blocks if none runs
                thread.join(timeout=5)
            server.server_close()
        self._remove_socket()
        store, self.store = self.store, None
        if store is not None:
            store.close()  # waits for the write in progress, then flushes and closes
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _remove_socket(self) -> None:
        # Only our own socket: never one a successor has bound in the meantime.
        if self._socket_inode is None:
            return
        try:
            if os.stat(self.socket_path).st_ino == self._socket_inode:
                self.socket_path.unlink()
        except FileNotFoundError:
            pass
        self._socket_inode = None


def run_owner(
    *,
    data_dir: Path,
    socket_path: Path,
    collection: str,
    ready: Callable[[str], None],
    graphs: GraphPolicy | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT. Raises OwnerConflict / StoreError if it cannot start."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    owner = Owner(data_dir=data_dir, socket_path=socket_path, collection=collection, graphs=graphs)
    try:
        owner.start()
        ready(f"vectorstore ready on {socket_path}")
        while not stop.wait(timeout=1.0):
            pass
        log.info("stopping the vectorstore")
    finally:
        owner.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
