"""Graph builds that do not stop search (issue 19): the embedded store builds its HNSW
graphs in a child process over a copy of the shard, replays the writes made meanwhile,
and swaps the copy in (apps/retrieval/store/edge.py build_graphs, generations.py).

The stores here are created with a tiny exact-search threshold, so a few thousand points
get a graph. To hold a build in its "building" stage for as long as a test needs, the
test stops the real child process (SIGSTOP) and lets it go on (SIGCONT) afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.retrieval.store import generations
from apps.retrieval.store.edge import EdgeStore
from apps.retrieval.store.protocol import Filter, Point, SparseVector, StoreError
from tests.support.vectorstore import start_vectorstore, stop_vectorstore

DIM = 16
EXACT = 100  # points; a segment of more gets a graph
NS = uuid.UUID("5d1c9f0e-8a43-4c1e-9b0a-2f6f2d7c1e11")


def pid_of(n: int) -> str:
    return str(uuid.uuid5(NS, str(n)))


def points(start: int, stop: int, *, collection: int = 1) -> list[Point]:
    out = []
    for n in range(start, stop):
        dense = [((n * 7 + j * 13) % 17) / 17.0 + (j == n % DIM) for j in range(DIM)]
        out.append(
            Point(
                id=pid_of(n),
                dense=dense,
                sparse=SparseVector([n % 50 + 1, 99], [1.0, 1.0]),
                payload={"collection_id": collection, "document_id": n // 10, "label": "internal"},
            )
        )
    return out


ALL = Filter.of(collection_id=[1, 2])


def wait_for(predicate, *, timeout: float = 30.0, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeStore]:
    store = EdgeStore(path=tmp_path / "chunks", exact_search_points=EXACT)
    store.ensure_collection(dense_size=DIM)
    store.upsert(points(0, 3000))
    yield store
    store.close()


def _stage(store) -> str:  # noqa: ANN001 - EdgeStore or SocketStore
    last = store.index_state()["last_build"]
    return last["stage"] if last else ""


def test_writes_made_during_a_build_are_in_the_built_shard(edge, tmp_path):
    before = edge.index_state()
    assert before["points"] == 3000 and not before["building"]
    assert edge.graphs_due()  # 3,000 points since no build, past the threshold
    done: dict[str, object] = {}
    builder = threading.Thread(target=lambda: done.update(r=edge.build_graphs(reason="test")))
    builder.start()
    wait_for(lambda: edge._child is not None and edge._child._proc is not None, what="the child")
    child = edge._child._proc.pid
    os.kill(child, signal.SIGSTOP)
    try:
        assert edge.index_state()["building"]
        assert not edge.graphs_due()  # never a second build beside the first
        edge.upsert(points(3000, 3050, collection=2))
        edge.delete(Filter.of(document_id=[0, 1]))
        edge.set_payload(Filter.of(document_id=[2]), {"label": "public"})
        # The shard that serves has them at once.
        assert edge.count(Filter.of(collection_id=[2])) == 50
        # Asked for while one runs: waits for it, then builds what came since.
        again = threading.Thread(
            target=lambda: done.update(again=edge.build_graphs(reason="asked"))
        )
        again.start()
    finally:
        os.kill(child, signal.SIGCONT)
    builder.join(timeout=120)
    record = done["r"]
    assert record.stage == "done" and record.replayed_writes == 3, record
    assert record.points == 3000  # the graphs cover the copy; the 50 came after
    again.join(timeout=120)
    again_record = done["again"]
    assert again_record.points == 3030 and again_record.reason == "asked", again_record
    # 30 new points are under the threshold: the engine had nothing to build; copy dropped.
    assert again_record.stage == "nothing to do", again_record
    state = edge.index_state()
    assert not state["building"]
    assert state["indexed_vectors"] > before["indexed_vectors"]  # the graphs exist now
    assert state["points"] == 3000 + 50 - 20
    assert edge.count(Filter.of(collection_id=[2])) == 50
    assert edge.count(Filter.of(document_id=[0, 1])) == 0
    labels = {p.payload["label"] for p in edge.scroll(Filter.of(document_id=[2]), limit=50)[0]}
    assert labels == {"public"}
    # The first shard is gone; the pointer names the built one; nothing else is left.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["chunks.active", "chunks.g1", "chunks.graphs.json"], names
    assert not edge.graphs_due()  # no growth since
    edge.close()
    reopened = EdgeStore(path=tmp_path / "chunks")
    try:
        assert reopened.count(ALL) == 3000 + 50 - 20
        assert reopened.index_state()["last_build"]["points"] == 3030  # the latest, on disk
    finally:
        reopened.close()


def test_a_failed_build_leaves_the_serving_shard_as_it_was(edge, tmp_path):
    builder_error: list[BaseException] = []

    def build() -> None:
        try:
            edge.build_graphs(reason="test")
        except StoreError as err:
            builder_error.append(err)

    builder = threading.Thread(target=build)
    builder.start()
    wait_for(lambda: edge._child is not None and edge._child._proc is not None, what="the child")
    os.kill(edge._child._proc.pid, signal.SIGKILL)  # the build dies
    builder.join(timeout=60)
    assert builder_error and "graph build failed" in str(builder_error[0])
    assert _stage(edge) == "failed"
    assert edge.count(ALL) == 3000
    assert len(edge.query_dense(points(5, 6)[0].dense, flt=ALL, limit=5)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunks"]  # the copy went
    assert not edge.graphs_due(retry_seconds=3600)  # not again at once
    assert edge.graphs_due(retry_seconds=0)


def test_a_pointer_to_nothing_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "chunks.active").write_text("elsewhere\n")
    with pytest.raises(StoreError, match="not a shard directory"):
        EdgeStore(path=tmp_path / "chunks")


# --- through the owner process ------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return found


def _owner(tmp_path: Path, **env: str) -> tuple[object, object]:
    from apps.retrieval.store.socket_client import SocketStore

    proc = start_vectorstore(
        tmp_path / "data",
        tmp_path / "vs.sock",
        env={
            **os.environ,
            "VECTOR_EXACT_SEARCH_POINTS": str(EXACT),
            "VECTOR_GRAPH_CHECK_SECONDS": "0",
            **env,
        },
    )
    return proc, SocketStore(path=tmp_path / "vs.sock", timeout=20)


@pytest.mark.timeout(180)
def test_the_owner_answers_searches_while_it_builds_graphs(tmp_path):
    proc, store = _owner(tmp_path)
    try:
        store.ensure_collection(dense_size=DIM)
        store.upsert(points(0, 3000))
        builder = threading.Thread(target=store.optimize)  # its own connection
        builder.start()
        wait_for(lambda: _children(proc.pid), what="the build's child process")
        child = _children(proc.pid)[0]
        os.kill(child, signal.SIGSTOP)
        try:
            # Before issue 19 optimize() ran in the owner holding the GIL: these hung.
            for n in range(20):
                found = store.query_dense(points(n, n + 1)[0].dense, flt=ALL, limit=3)
                assert len(found) == 3
            store.upsert(points(3000, 3010, collection=2))
            assert store.count(Filter.of(collection_id=[2])) == 10
            state = store.index_state()
            assert state["building"] and state["last_build"]["stage"] == "building"
        finally:
            os.kill(child, signal.SIGCONT)
        builder.join(timeout=120)
        state = store.index_state()
        assert state["last_build"]["stage"] == "done", state
        assert state["last_build"]["replayed_writes"] == 1
        assert store.count(ALL) == 3010
    finally:
        store.close()
        stop_vectorstore(proc)


@pytest.mark.timeout(120)
def test_the_owner_builds_graphs_by_itself_as_the_store_grows(tmp_path):
    proc, store = _owner(tmp_path, VECTOR_GRAPH_CHECK_SECONDS="0.2")
    try:
        store.ensure_collection(dense_size=DIM)
        assert store.index_state()["last_build"] is None
        store.upsert(points(0, 40))  # under the threshold: no build
        time.sleep(1.0)
        assert store.index_state()["last_build"] is None
        store.upsert(points(40, 1000))
        wait_for(lambda: _stage(store) == "done", timeout=60, what="an automatic build")
        first = store.index_state()["last_build"]
        assert first["reason"] == "grown" and first["points"] == 1000
        time.sleep(1.0)  # no growth: no second build
        assert store.index_state()["last_build"]["started_at"] == first["started_at"]
    finally:
        store.close()
        stop_vectorstore(proc)


def _optimize_until_killed(store) -> None:  # noqa: ANN001 - a SocketStore
    try:
        store.optimize()
    except StoreError:
        pass  # the owner was killed under it


@pytest.mark.timeout(180)
def test_a_killed_owner_mid_build_restarts_with_every_acknowledged_write(tmp_path):
    proc, store = _owner(tmp_path)
    child = None
    try:
        store.ensure_collection(dense_size=DIM)
        store.upsert(points(0, 3000))
        threading.Thread(target=_optimize_until_killed, args=(store,), daemon=True).start()
        wait_for(lambda: _children(proc.pid), what="the build's child process")
        child = _children(proc.pid)[0]
        os.kill(child, signal.SIGSTOP)
        store.upsert(points(3000, 3100, collection=2))  # in the old shard's WAL, and journaled
        stop_vectorstore(proc, sig=signal.SIGKILL)
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        store.close()
    assert generations.next_dir(tmp_path / "data" / "enclave_chunks").name == (
        "enclave_chunks.g2"
    )  # the copy, enclave_chunks.g1, is there
    proc, store = _owner(tmp_path)
    try:
        assert store.count(ALL) == 3100
        names = {p.name for p in (tmp_path / "data").iterdir() if p.is_dir()}
        assert names == {"enclave_chunks"}, names  # the unfinished copy was removed
    finally:
        store.close()
        stop_vectorstore(proc)


def test_a_flush_happens_only_after_writes_and_keeps_them(edge, tmp_path):
    assert edge.flush()  # the fixture's 3,000 points
    assert not edge.flush()  # nothing new
    edge.upsert(points(3000, 3001))
    assert edge.flush()
    edge.close()
    reopened = EdgeStore(path=tmp_path / "chunks")
    try:
        assert reopened.count(ALL) == 3001
    finally:
        reopened.close()


def test_writes_that_go_on_while_the_journal_is_replayed_all_arrive(edge):
    builder = threading.Thread(target=edge.build_graphs, kwargs={"reason": "test"})
    builder.start()
    wait_for(lambda: edge._child is not None and edge._child._proc is not None, what="the child")
    child = edge._child._proc.pid
    os.kill(child, signal.SIGSTOP)
    for n in range(200):  # a journal of 200 writes, more than the locked tail
        edge.upsert(points(10_000 + n * 5, 10_000 + n * 5 + 5, collection=2))
    stop = threading.Event()
    written = []

    def keep_writing() -> None:  # through the copy's catch-up and the swap
        n = 0
        while not stop.is_set():
            edge.upsert(points(50_000 + n, 50_001 + n, collection=2))
            written.append(n)
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    os.kill(child, signal.SIGCONT)
    builder.join(timeout=120)
    stop.set()
    writer.join(timeout=30)
    record = edge.last_build()
    assert record.stage == "done" and record.replayed_writes >= 200, record
    assert edge.count(Filter.of(collection_id=[2])) == 1000 + len(written)
