"""Fixtures for the vector store suite: both backends, real engines, no mocks.

`store` is parametrized: every test that takes it runs against ServerStore on
qdrant-client's in-process `:memory:` Qdrant and against SocketStore talking to a real
`manage.py vectorstore` child process (qdrant-edge underneath). A third backend,
"server-url", runs the same tests against the real Qdrant server at QDRANT_URL (with
QDRANT_API_KEY), each test in a collection of its own that is dropped after it; without
QDRANT_URL it is skipped, saying so.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apps.retrieval.store.protocol import VectorStore

DENSE_SIZE = 8


@dataclass
class Owner:
    data_dir: Path
    socket: Path
    proc: subprocess.Popen


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Owner]:
    """One owner process per test module; tests keep apart by their own collection ids."""
    from tests.support.vectorstore import start_vectorstore, stop_vectorstore

    base = tmp_path_factory.mktemp("vs")
    proc = start_vectorstore(base / "data", base / "vs.sock")
    yield Owner(data_dir=base / "data", socket=base / "vs.sock", proc=proc)
    stop_vectorstore(proc)


SERVER_URL_SKIP = (
    "QDRANT_URL is not set: the server-url backend runs the store tests against a real "
    "Qdrant server only (set QDRANT_URL, and QDRANT_API_KEY if it needs one)"
)


@pytest.fixture(params=["server", "socket", "server-url"])
def store(request: pytest.FixtureRequest) -> Iterator[VectorStore]:
    if request.param == "server":
        from apps.retrieval.store.server import ServerStore

        backend: VectorStore = ServerStore(location=":memory:", collection="test_chunks")
    elif request.param == "server-url":
        from django.conf import settings

        from apps.retrieval.store.server import ServerStore

        if not settings.QDRANT_URL:
            pytest.skip(SERVER_URL_SKIP)
        server = ServerStore(
            url=settings.QDRANT_URL,
            api_key=settings.QDRANT_API_KEY,
            collection=f"enclave_test_{uuid.uuid4().hex[:12]}",
            timeout=30,
        )
        request.addfinalizer(
            lambda: server._get_client().delete_collection(server.collection, timeout=30)
        )
        backend = server
    else:
        from apps.retrieval.store.socket_client import SocketStore

        owner = request.getfixturevalue("owner")
        backend = SocketStore(path=owner.socket, timeout=20)
    backend.ensure_collection(dense_size=DENSE_SIZE)
    yield backend
    backend.close()


# The socket backend's shard lives for the whole module, so every test draws collection
# and document ids nobody else uses; its filters then see only its own points.
_ids = itertools.count(random.randrange(1_000, 1_000_000) * 1_000, 1_000)


@pytest.fixture
def ids() -> Iterator[int]:
    """A fresh block of 1,000 integers for this test's collection/document/group ids."""
    base = next(_ids)
    return iter(range(base, base + 1_000))
