"""/healthz and /readyz against the real parts of the test session: PostgreSQL, Redis, the
vector store owner process and the llama.cpp server. A part is taken down by pointing the
setting at something that does not answer, never by mocking its client."""

from __future__ import annotations

import json
import os

import pytest

from apps.retrieval.store import reset_store
from apps.retrieval.store.protocol import Point, SparseVector
from apps.retrieval.store.socket_client import SocketStore
from apps.routing.model_queue import local_model_full
from tests.support.llm import free_port
from tests.support.model_queue import model_queue_taken
from tests.support.vectorstore import start_vectorstore, stop_vectorstore

pytestmark = pytest.mark.django_db

PARTS = {"database", "redis", "vectorstore", "local_model"}


def test_healthz_is_ok_without_any_dependency(client, settings):
    # Liveness touches nothing: even with every part pointed nowhere it answers.
    settings.LOCAL_LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.fixture
def everything_up(enclave_env, live_vectorstore, live_llm, settings):
    settings.LOCAL_LLM_BASE_URL = live_llm["base_url"]
    return live_llm


def _ready(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def test_readyz_is_200_when_database_redis_store_and_model_all_answer(client, everything_up):
    status, body = _ready(client)
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == PARTS
    assert all(check["status"] == "up" for check in body["checks"].values()), body


def test_readyz_shows_the_model_queue_without_failing_when_it_is_full(
    client, everything_up, settings
):
    settings.MODEL_QUEUE_MAX_LENGTH = 2
    with model_queue_taken(waiting=2):
        assert local_model_full()
        status, body = _ready(client)
    assert status == 200, body  # a busy model is a working one
    assert body["checks"]["local_model"]["queue"] == {"waiting": 2, "slots_busy": 1, "slots": 1}
    status, body = _ready(client)
    assert body["checks"]["local_model"]["queue"] == {"waiting": 0, "slots_busy": 0, "slots": 1}


def test_readyz_is_503_naming_the_model_server_when_its_port_is_wrong(
    client, everything_up, settings
):
    settings.LOCAL_LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    settings.LOCAL_LLM_API_KEY = "sk-local-model-key-never-shown"
    status, body = _ready(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["local_model"]["status"] == "down"
    assert "not reachable" in body["checks"]["local_model"]["error"]
    assert {n for n, c in body["checks"].items() if c["status"] == "up"} == PARTS - {"local_model"}
    # Nothing secret or internal in what any caller may read.
    text = json.dumps(body)
    assert "sk-local-model-key" not in text and "127.0.0.1" not in text


def test_readyz_names_redis_when_the_broker_is_down(client, everything_up, settings):
    settings.CELERY_BROKER_URL = f"redis://:broker-password@127.0.0.1:{free_port()}/0"
    status, body = _ready(client)
    assert status == 503
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["local_model"]["status"] == "up"
    assert "broker-password" not in json.dumps(body)


def test_readyz_names_the_vector_store_when_its_owner_is_not_there(
    client, everything_up, settings, tmp_path
):
    settings.VECTOR_SOCKET = tmp_path / "nobody-listens.sock"
    status, body = _ready(client)
    assert status == 503
    assert body["checks"]["vectorstore"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"
    assert "error" in body["checks"]["vectorstore"]["index"]


def test_readyz_shows_the_vector_index_and_its_graph_build(
    client, everything_up, settings, tmp_path
):
    """A store of its own, with a threshold small enough for 600 points to get graphs."""
    sock = tmp_path / "vs.sock"
    env = {**os.environ, "VECTOR_EXACT_SEARCH_POINTS": "100", "VECTOR_GRAPH_CHECK_SECONDS": "0"}
    proc = start_vectorstore(tmp_path / "data", sock, env=env)
    settings.VECTOR_SOCKET = sock
    reset_store()
    store = SocketStore(path=sock, timeout=20)
    try:
        store.ensure_collection(dense_size=8)
        store.upsert(
            [
                Point(
                    id=f"00000000-0000-4000-8000-{n:012d}",
                    dense=[float(n % 7 == j) + 0.1 * j for j in range(8)],
                    sparse=SparseVector([n % 13 + 1], [1.0]),
                    payload={"collection_id": 1, "document_id": n},
                )
                for n in range(600)
            ]
        )
        status, body = _ready(client)
        assert status == 200, body
        assert body["checks"]["vectorstore"]["index"] == {
            "points": 600, "segments": 1, "graphs": "none yet"
        }  # fmt: skip
        store.optimize()
        status, body = _ready(client)
        index = body["checks"]["vectorstore"]["index"]
        assert index["points"] == 600 and index["graphs"] == "built", index
        assert index["last_build"]["stage"] == "done" and index["last_build"]["reason"] == "asked"
    finally:
        store.close()
        stop_vectorstore(proc)
        reset_store()


def test_readyz_names_the_database_when_it_is_down(client, everything_up, settings):
    from django.db import connections

    saved = dict(connections.settings["default"])
    connections.settings["default"]["PORT"] = str(free_port())
    try:
        status, body = _ready(client)
    finally:
        connections.settings["default"].clear()
        connections.settings["default"].update(saved)
    assert status == 503
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["redis"]["status"] == "up"


def test_readyz_gives_up_on_a_part_that_hangs_within_its_timeout(client, everything_up, settings):
    import socket
    import time

    # A listener that accepts nothing: connecting works (backlog), the request never ends.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        settings.LOCAL_LLM_BASE_URL = f"http://127.0.0.1:{hung.getsockname()[1]}/v1"
        settings.READYZ_TIMEOUT_SECONDS = 0.5
        started = time.monotonic()
        status, body = _ready(client)
        elapsed = time.monotonic() - started
    assert status == 503
    assert body["checks"]["local_model"]["status"] == "down"
    assert elapsed < 10  # a bound on the hang, not a speed figure: the timeout is 0.5 s
