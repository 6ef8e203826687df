"""The vector store: one VectorStore protocol, two backends chosen by configuration.

QDRANT_URL set   -> ServerStore (Qdrant server or cluster through qdrant-client)
QDRANT_URL empty -> SocketStore (talks to `manage.py vectorstore`, which holds the
                    embedded qdrant-edge shard under VECTOR_DATA_DIR)

Importing this package imports neither qdrant library; the backends do, when first used.
The modules of the package import each other by their full names, never this package, so
that it may import the backends.
"""

from __future__ import annotations

import os
import threading

from django.conf import settings

from apps.retrieval.store.protocol import Filter, Point, StoreError, StoreUnavailable, VectorStore
from apps.retrieval.store.server import ServerStore
from apps.retrieval.store.socket_client import SocketStore

__all__ = [
    "Filter",
    "Point",
    "StoreError",
    "StoreUnavailable",
    "VectorStore",
    "build_store",
    "get_store",
    "reset_store",
]

_lock = threading.Lock()
_cached: tuple[int, VectorStore] | None = None


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the lock at fork time; the child has no such
    # thread, so it gets a fresh lock rather than a lock nobody will ever release.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def build_store(*, timeout: float | None = None) -> VectorStore:
    """A new store from settings, not the process's shared one (`get_store`): for a probe
    that must give up sooner than VECTOR_TIMEOUT_SECONDS (/readyz). Close it after use."""
    timeout = timeout if timeout is not None else settings.VECTOR_TIMEOUT_SECONDS
    if settings.QDRANT_URL:
        return ServerStore(
            url=settings.QDRANT_URL,
            api_key=settings.QDRANT_API_KEY,
            collection=settings.QDRANT_COLLECTION,
            shards=settings.QDRANT_SHARDS,
            replication=settings.QDRANT_REPLICATION,
            timeout=timeout,
            on_disk_payload=settings.QDRANT_ON_DISK_PAYLOAD,
            on_disk_vectors=settings.QDRANT_ON_DISK_VECTORS,
            quantization=settings.QDRANT_QUANTIZATION,
            hnsw_m=settings.QDRANT_HNSW_M,
            hnsw_ef_construct=settings.QDRANT_HNSW_EF_CONSTRUCT,
        )
    return SocketStore(path=settings.VECTOR_SOCKET, timeout=timeout)


def get_store() -> VectorStore:
    """The process's store, built on first use from settings.

    Keyed by pid: a forked child (Celery prefork) builds its own, so it never shares an
    HTTP connection pool or a socket with its parent.
    """
    global _cached
    with _lock:
        if _cached is None or _cached[0] != os.getpid():
            _cached = (os.getpid(), build_store())
        return _cached[1]


def reset_store() -> None:
    """Forget the cached store (tests change settings between uses)."""
    global _cached
    with _lock:
        cached, _cached = _cached, None
    if cached is not None and cached[0] == os.getpid():
        cached[1].close()
