"""The VectorStore contract, run against both backends (see conftest.py), plus the owner
process's own promises: durability across SIGKILL, one owner only, no hanging clients."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from apps.retrieval import sparse
from apps.retrieval.store.protocol import (
    Filter,
    Point,
    ScoredPoint,
    SparseVector,
    StoreError,
    StoreUnavailable,
    VectorStore,
    full_scan_threshold_kb,
)
from tests.retrieval.conftest import DENSE_SIZE
from tests.support.vectorstore import start_vectorstore, stop_vectorstore

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")


def unit(i: int, *, scale: float = 1.0) -> list[float]:
    return [scale if j == i else 0.0 for j in range(DENSE_SIZE)]


def blend(a: int, b: int, *, weight: float) -> list[float]:
    """Mostly axis `a`, tilted towards axis `b`: a controllable cosine to unit(a)."""
    return [(1 - weight) * (j == a) + weight * (j == b) for j in range(DENSE_SIZE)]


def point(
    *,
    collection: int,
    document: int,
    chunk: int,
    dense: list[float],
    text: str = "plain filler words",
    groups: list[int] | None = None,
    label: str = "internal",
) -> Point:
    return Point(
        id=str(uuid.uuid5(NAMESPACE, f"{document}:{chunk}")),
        dense=dense,
        sparse=sparse.encode_documents([text])[0],
        payload={
            "collection_id": collection,
            "document_id": document,
            "chunk_index": chunk,
            "label": label,
            "groups": groups if groups is not None else [],
            "text": text,
            "title": f"Document {document}",
            "section": "Intro",
            "page": chunk + 1,
            "char_start": chunk * 100,
            "char_end": chunk * 100 + 99,
        },
    )


def scroll_all(store: VectorStore, flt: Filter, *, page: int = 2) -> list[ScoredPoint]:
    found: list[ScoredPoint] = []
    offset = None
    while True:
        batch, offset = store.scroll(flt, limit=page, offset=offset)
        found.extend(batch)
        if offset is None:
            return found


def ids_of(points: list[ScoredPoint]) -> set[str]:
    return {p.id for p in points}


def search(
    store: VectorStore, mode: str, *, dense: list[float], text: str, flt: Filter, limit: int
) -> list[ScoredPoint]:
    if mode == "dense":
        return store.query_dense(dense, flt=flt, limit=limit)
    if mode == "sparse":
        return store.query_sparse(sparse.encode_query(text), flt=flt, limit=limit)
    return store.query_hybrid(
        dense, sparse.encode_query(text), flt=flt, limit=limit, prefetch_limit=limit, rrf_k=60
    )


# --- the contract, on both backends --------------------------------------------------------


def test_ensure_collection_is_idempotent(store, ids):
    cid, doc = next(ids), next(ids)
    store.upsert([point(collection=cid, document=doc, chunk=i, dense=unit(i)) for i in range(3)])
    store.ensure_collection(dense_size=DENSE_SIZE)
    store.ensure_collection(dense_size=DENSE_SIZE)
    assert store.count(Filter.of(collection_id=[cid])) == 3


def test_ensure_collection_refuses_another_vector_size(store):
    with pytest.raises(StoreError, match="dimensional"):
        store.ensure_collection(dense_size=DENSE_SIZE + 1)


def test_upsert_then_count_and_scroll_read_back_exact_payloads(store, ids):
    cid, doc = next(ids), next(ids)
    written = [
        point(
            collection=cid,
            document=doc,
            chunk=i,
            dense=unit(i % DENSE_SIZE),
            text=f"Grüße aus Zürich — chunk {i} ✓",
            groups=[next(ids), next(ids)],
        )
        for i in range(5)
    ]
    written[0].payload["section"] = None  # nulls and floats survive too
    written[1].payload["ratio"] = 0.25
    store.upsert(written)

    assert store.count(Filter.of(collection_id=[cid])) == 5
    found = scroll_all(store, Filter.of(collection_id=[cid]), page=2)
    assert len(found) == 5 and len(ids_of(found)) == 5
    assert {p.id: p.payload for p in found} == {p.id: p.payload for p in written}


def test_reupserting_the_same_ids_replaces_instead_of_duplicating(store, ids):
    cid, doc = next(ids), next(ids)
    first = [
        point(collection=cid, document=doc, chunk=i, dense=unit(i), text="first") for i in range(4)
    ]
    store.upsert(first)
    again = [
        point(collection=cid, document=doc, chunk=i, dense=unit(i), text="second") for i in range(4)
    ]
    store.upsert(again)
    found = scroll_all(store, Filter.of(collection_id=[cid]), page=10)
    assert store.count(Filter.of(collection_id=[cid])) == 4
    assert ids_of(found) == {p.id for p in first}
    assert {p.payload["text"] for p in found} == {"second"}


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_filter_is_applied_inside_the_query(store, ids, mode):
    """Hidden points are the best matches; a filter applied after a top-k would return
    nothing at all, a filter inside the query fills the whole limit with readable ones."""
    hidden, readable, also = next(ids), next(ids), next(ids)
    query = unit(0)
    points = [
        point(
            collection=hidden,
            document=next(ids),
            chunk=i,
            dense=query,
            text="quarterly revenue revenue revenue forecast",
        )
        for i in range(10)
    ]
    mine = [
        point(
            collection=readable,
            document=next(ids),
            chunk=i,
            dense=blend(0, i + 1, weight=0.5),
            text=f"revenue notes part {i}",
        )
        for i in range(3)
    ]
    other = [
        point(
            collection=also,
            document=next(ids),
            chunk=i,
            dense=blend(0, i + 4, weight=0.6),
            text=f"revenue appendix {i}",
        )
        for i in range(2)
    ]
    store.upsert(points + mine + other)

    found = search(
        store, mode, dense=query, text="revenue", flt=Filter.of(collection_id=[readable]), limit=3
    )
    assert ids_of(found) == {p.id for p in mine}

    any_of = search(
        store,
        mode,
        dense=query,
        text="revenue",
        flt=Filter.of(collection_id=[readable, also]),
        limit=10,
    )
    assert ids_of(any_of) == {p.id for p in mine + other}
    assert all(p.payload["collection_id"] in (readable, also) for p in any_of)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_groups_filter_matches_any_element_of_the_array(store, ids, mode):
    cid = next(ids)
    g1, g2, g3, g4 = next(ids), next(ids), next(ids), next(ids)
    doc = next(ids)
    a = point(collection=cid, document=doc, chunk=0, dense=unit(0), text="budget", groups=[g1, g2])
    b = point(collection=cid, document=doc, chunk=1, dense=unit(1), text="budget", groups=[g3])
    c = point(collection=cid, document=doc, chunk=2, dense=unit(2), text="budget", groups=[g2, g4])
    d = point(collection=cid, document=doc, chunk=3, dense=unit(3), text="budget", groups=[])
    store.upsert([a, b, c, d])

    def found(*groups: int) -> set[str]:
        return ids_of(
            search(
                store,
                mode,
                dense=unit(0),
                text="budget",
                flt=Filter.of(groups=list(groups)),
                limit=10,
            )
        )

    assert found(g2) == {a.id, c.id}
    assert found(g3, g4) == {b.id, c.id}
    assert store.count(Filter.of(groups=[g1])) == 1
    assert store.count(Filter.of(collection_id=[cid], groups=[g2])) == 2
    assert store.count(Filter.of(collection_id=[cid + 1], groups=[g2])) == 0


@pytest.mark.parametrize(
    "flt",
    [
        Filter.of(),
        Filter(must={}),
        Filter.of(collection_id=[]),
        Filter.of(collection_id=[1], groups=[]),
    ],
    ids=["no-fields", "empty-mapping", "empty-values", "one-empty-field"],
)
def test_unfiltered_operations_are_refused(store, ids, flt):
    cid, doc = next(ids), next(ids)
    store.upsert([point(collection=cid, document=doc, chunk=0, dense=unit(0), text="secret")])
    operations = {
        "count": lambda: store.count(flt),
        "scroll": lambda: store.scroll(flt, limit=10),
        "delete": lambda: store.delete(flt),
        "set_payload": lambda: store.set_payload(flt, {"label": "public"}),
        "dense": lambda: store.query_dense(unit(0), flt=flt, limit=5),
        "sparse": lambda: store.query_sparse(sparse.encode_query("secret"), flt=flt, limit=5),
        "hybrid": lambda: store.query_hybrid(
            unit(0), sparse.encode_query("secret"), flt=flt, limit=5, prefetch_limit=5, rrf_k=60
        ),
    }
    for name, call in operations.items():
        with pytest.raises(StoreError, match="refusing an unfiltered"):
            call()
            pytest.fail(f"{name} accepted an unfiltered request")
    [kept] = scroll_all(store, Filter.of(collection_id=[cid]))
    assert kept.payload["label"] == "internal"


@pytest.mark.parametrize("values", [[True], [1, "1"], [None], "123"], ids=repr)
def test_filter_values_of_the_wrong_type_are_refused(store, values):
    with pytest.raises(StoreError, match="refusing"):
        store.count(Filter(must={"collection_id": values}))


def test_delete_by_document_removes_exactly_those_points(store, ids):
    cid, gone, kept = next(ids), next(ids), next(ids)
    store.upsert([point(collection=cid, document=gone, chunk=i, dense=unit(i)) for i in range(4)])
    survivors = [point(collection=cid, document=kept, chunk=i, dense=unit(i)) for i in range(3)]
    store.upsert(survivors)

    store.delete(Filter.of(document_id=[gone]))

    assert store.count(Filter.of(document_id=[gone])) == 0
    assert ids_of(scroll_all(store, Filter.of(collection_id=[cid]))) == {p.id for p in survivors}
    store.delete(Filter.of(document_id=[gone]))  # deleting again is harmless
    assert store.count(Filter.of(collection_id=[cid])) == 3


def test_set_payload_merges_keys_into_matching_points_only(store, ids):
    cid, changed, untouched, group = next(ids), next(ids), next(ids), next(ids)
    old_group = next(ids)
    a = [
        point(
            collection=cid,
            document=changed,
            chunk=i,
            dense=unit(i),
            text=f"a{i}",
            groups=[old_group],
        )
        for i in range(3)
    ]
    b = [
        point(
            collection=cid,
            document=untouched,
            chunk=i,
            dense=unit(i),
            text=f"b{i}",
            groups=[old_group],
        )
        for i in range(2)
    ]
    store.upsert(a + b)

    store.set_payload(Filter.of(document_id=[changed]), {"label": "public", "groups": [group]})

    after = {p.id: p.payload for p in scroll_all(store, Filter.of(collection_id=[cid]))}
    for p in a:
        assert after[p.id] == {**p.payload, "label": "public", "groups": [group]}
    for p in b:
        assert after[p.id] == p.payload
    assert store.count(Filter.of(groups=[group])) == 3
    assert store.count(Filter.of(groups=[old_group])) == 2
    assert store.count(Filter.of(collection_id=[cid], label=["public"])) == 3


def test_hybrid_returns_points_found_only_by_keywords_and_only_by_meaning(store, ids):
    cid, doc = next(ids), next(ids)
    query = unit(0)
    by_meaning = point(
        collection=cid,
        document=doc,
        chunk=0,
        dense=query,
        text="staff may work from home on fridays",
    )
    by_keyword = point(
        collection=cid,
        document=doc,
        chunk=1,
        dense=unit(0, scale=-1.0),
        text="the XR-7731 gasket replacement procedure",
    )
    fillers = [
        point(
            collection=cid,
            document=doc,
            chunk=2 + i,
            dense=blend(0, 1 + i, weight=0.7),
            text=f"unrelated filler paragraph {i}",
        )
        for i in range(5)
    ]
    store.upsert([by_meaning, by_keyword, *fillers])
    flt = Filter.of(collection_id=[cid])
    terms = sparse.encode_query("XR-7731 gasket")

    dense_only = store.query_dense(query, flt=flt, limit=3)
    assert dense_only[0].id == by_meaning.id and by_keyword.id not in ids_of(dense_only)
    keyword_only = store.query_sparse(terms, flt=flt, limit=3)
    assert ids_of(keyword_only) == {by_keyword.id}

    hybrid = store.query_hybrid(query, terms, flt=flt, limit=4, prefetch_limit=3, rrf_k=60)
    assert {by_meaning.id, by_keyword.id} <= ids_of(hybrid)
    assert all(isinstance(p.score, float) and p.payload["collection_id"] == cid for p in hybrid)


def test_a_query_without_terms_finds_nothing_by_keywords(store, ids):
    cid, doc = next(ids), next(ids)
    store.upsert([point(collection=cid, document=doc, chunk=0, dense=unit(0), text="anything")])
    flt = Filter.of(collection_id=[cid])
    empty = sparse.encode_query("")
    assert empty == SparseVector(indices=[], values=[])
    assert store.query_sparse(empty, flt=flt, limit=5) == []
    hybrid = store.query_hybrid(unit(0), empty, flt=flt, limit=5, prefetch_limit=5, rrf_k=60)
    assert len(hybrid) == 1


def test_engine_errors_become_store_errors(store, ids):
    cid = next(ids)
    flt = Filter.of(collection_id=[cid])
    with pytest.raises(StoreError):
        store.query_dense([1.0] * (DENSE_SIZE + 3), flt=flt, limit=3)
    with pytest.raises(StoreError):
        store.upsert([point(collection=cid, document=1, chunk=0, dense=[1.0] * (DENSE_SIZE + 1))])
    bad_id = Point(id="not-a-uuid", dense=unit(0), sparse=SparseVector([], []), payload={})
    with pytest.raises(StoreError, match="UUID"):
        store.upsert([bad_id])
    with pytest.raises(StoreError, match="limit"):
        store.query_dense(unit(0), flt=flt, limit=0)


def test_optimize_keeps_every_point(store, ids):
    cid, doc = next(ids), next(ids)
    store.upsert(
        [point(collection=cid, document=doc, chunk=i, dense=unit(i % 8)) for i in range(20)]
    )
    store.optimize()
    assert store.count(Filter.of(collection_id=[cid])) == 20
    assert len(store.query_dense(unit(1), flt=Filter.of(collection_id=[cid]), limit=5)) == 5


# --- reads before anything was ingested ----------------------------------------------------


def test_reads_before_the_collection_exists_find_nothing(tmp_path):
    from apps.retrieval.store.server import ServerStore
    from apps.retrieval.store.socket_client import SocketStore

    proc = start_vectorstore(tmp_path / "data", tmp_path / "vs.sock")
    stores: list[VectorStore] = [
        ServerStore(location=":memory:", collection="never_created"),
        SocketStore(path=tmp_path / "vs.sock", timeout=10),
    ]
    try:
        for store in stores:
            flt = Filter.of(collection_id=[1])
            assert store.count(flt) == 0
            assert store.scroll(flt, limit=5) == ([], None)
            assert store.query_dense(unit(0), flt=flt, limit=5) == []
            assert store.query_sparse(sparse.encode_query("x"), flt=flt, limit=5) == []
            store.delete(flt)
            store.set_payload(flt, {"label": "public"})
            with pytest.raises(StoreError):
                store.upsert([point(collection=1, document=1, chunk=0, dense=unit(0))])
            with pytest.raises(StoreError, match="refusing an unfiltered"):
                store.count(Filter.of())
            store.close()
    finally:
        stop_vectorstore(proc)


# --- the owner process ---------------------------------------------------------------------


def test_acknowledged_writes_survive_sigkill_of_the_owner(tmp_path):
    from apps.retrieval.store.socket_client import SocketStore

    sock = tmp_path / "vs.sock"
    proc = start_vectorstore(tmp_path / "data", sock)
    store = SocketStore(path=sock, timeout=20)
    store.ensure_collection(dense_size=DENSE_SIZE)
    written: dict[str, dict] = {}
    for doc in range(1, 21):
        batch = [
            point(collection=7, document=doc, chunk=i, dense=unit(i % 8), text=f"d{doc} c{i}")
            for i in range(25)
        ]
        store.upsert(batch)
        written.update({p.id: p.payload for p in batch})
    store.set_payload(Filter.of(document_id=[3]), {"label": "public"})
    store.delete(Filter.of(document_id=[4]))
    for pid, payload in list(written.items()):
        if payload["document_id"] == 3:
            written[pid] = {**payload, "label": "public"}
        elif payload["document_id"] == 4:
            del written[pid]

    stop_vectorstore(proc, sig=signal.SIGKILL)  # right after the last acknowledgement
    assert proc.returncode == -signal.SIGKILL
    assert sock.exists(), "a killed owner leaves its socket behind"
    with pytest.raises(StoreUnavailable):
        store.count(Filter.of(collection_id=[7]))

    proc = start_vectorstore(tmp_path / "data", sock)  # must clear the stale socket
    try:
        assert store.count(Filter.of(collection_id=[7])) == len(written)
        found = scroll_all(store, Filter.of(collection_id=[7]), page=100)
        assert {p.id: p.payload for p in found} == written
    finally:
        store.close()
        stop_vectorstore(proc)


@pytest.mark.timeout(30)
def test_owner_down_raises_store_unavailable_without_hanging(tmp_path):
    from apps.retrieval.store.socket_client import SocketStore

    missing = SocketStore(path=tmp_path / "nobody.sock", timeout=2)
    with pytest.raises(StoreUnavailable, match="not running"):
        missing.count(Filter.of(collection_id=[1]))

    # A socket file nobody listens on, as a crashed owner leaves it.
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))
    with pytest.raises(StoreUnavailable, match="not running"):
        SocketStore(path=stale, timeout=2).query_dense(
            unit(0), flt=Filter.of(collection_id=[1]), limit=3
        )


@pytest.mark.timeout(60)
def test_a_hung_owner_times_out_then_recovers(tmp_path):
    from apps.retrieval.store.socket_client import SocketStore

    proc = start_vectorstore(tmp_path / "data", tmp_path / "vs.sock")
    store = SocketStore(path=tmp_path / "vs.sock", timeout=1)
    store.ensure_collection(dense_size=DENSE_SIZE)
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailable, match="did not answer"):
                store.count(Filter.of(collection_id=[1]))
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert store.count(Filter.of(collection_id=[1])) == 0
    finally:
        stop_vectorstore(proc)


def test_sigterm_stops_cleanly_and_clients_reconnect_after_a_restart(tmp_path):
    from apps.retrieval.store.socket_client import SocketStore

    sock = tmp_path / "vs.sock"
    proc = start_vectorstore(tmp_path / "data", sock)
    store = SocketStore(path=sock, timeout=10)
    store.ensure_collection(dense_size=DENSE_SIZE)
    store.upsert([point(collection=5, document=1, chunk=i, dense=unit(i)) for i in range(3)])

    assert stop_vectorstore(proc) == 0
    assert not sock.exists()
    with pytest.raises(StoreUnavailable):
        store.count(Filter.of(collection_id=[5]))

    proc = start_vectorstore(tmp_path / "data", sock)
    try:
        assert store.count(Filter.of(collection_id=[5])) == 3  # same client object
    finally:
        store.close()
        assert stop_vectorstore(proc) == 0


def test_a_second_owner_refuses_to_start(owner, tmp_path):
    from apps.retrieval.store.socket_client import SocketStore

    attempts = {
        "same data dir and socket": (owner.data_dir, owner.socket),
        "same data dir, other socket": (owner.data_dir, tmp_path / "other.sock"),
        "other data dir, same socket": (tmp_path / "other-data", owner.socket),
    }
    for case, (data_dir, sock) in attempts.items():
        with pytest.raises(RuntimeError, match="exited with code 1") as refused:
            proc = start_vectorstore(data_dir, sock)
            stop_vectorstore(proc)
            pytest.fail(f"{case}: a second owner started")
        assert "already" in str(refused.value), case
    # The refused owners left the running one, its socket and its lock alone.
    assert owner.proc.poll() is None
    assert SocketStore(path=owner.socket, timeout=5).ping()["pid"] == owner.proc.pid


def test_the_owner_refuses_unfiltered_requests_on_the_wire(owner, ids):
    """A client that skips SocketStore's own checks still meets the owner's."""
    from apps.retrieval.store import wire
    from apps.retrieval.store.socket_client import SocketStore

    cid = next(ids)
    store = SocketStore(path=owner.socket, timeout=10)
    store.ensure_collection(dense_size=DENSE_SIZE)
    store.upsert([point(collection=cid, document=next(ids), chunk=0, dense=unit(0))])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(str(owner.socket))
        for request in [
            {"op": "delete", "args": {"flt": {"must": {}}}},
            {"op": "delete", "args": {"flt": None}},
            {
                "op": "set_payload",
                "args": {"flt": {"must": {"collection_id": []}}, "payload": {"label": "public"}},
            },
            {"op": "count", "args": {"flt": {}}},
        ]:
            raw.sendall(wire.pack(request))
            reply = wire.recv_frame(raw)
            assert reply["kind"] == "StoreError" and "refusing" in reply["error"], request
        raw.sendall(wire.pack({"op": "drop_everything", "args": {}}))
        assert "unknown" in wire.recv_frame(raw)["error"]
    assert store.count(Filter.of(collection_id=[cid])) == 1


def test_edge_shard_keeps_filtered_search_exact(owner):
    """Recall itself is measured at scale by bench/store.py; here: the settings stuck."""
    from django.conf import settings

    from apps.retrieval.store.socket_client import SocketStore

    SocketStore(path=owner.socket, timeout=10).ensure_collection(dense_size=DENSE_SIZE)
    shard = owner.data_dir / settings.QDRANT_COLLECTION
    config = json.loads((shard / "edge_config.json").read_text())
    assert config["hnsw_config"]["full_scan_threshold"] == full_scan_threshold_kb(DENSE_SIZE)
    assert config["optimizers"]["indexing_threshold"] == full_scan_threshold_kb(DENSE_SIZE)
    assert config.get("wal_enabled", True) is not False
    assert full_scan_threshold_kb(384) * 1024 // (384 * 4) >= 100_000


def test_a_forked_child_gets_its_own_connection(owner, ids):
    from apps.retrieval.store.socket_client import SocketStore

    cid = next(ids)
    store = SocketStore(path=owner.socket, timeout=10)
    store.ensure_collection(dense_size=DENSE_SIZE)
    store.upsert(
        [point(collection=cid, document=next(ids), chunk=i, dense=unit(i)) for i in range(4)]
    )
    assert store.count(Filter.of(collection_id=[cid])) == 4  # the parent holds a connection

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            counted = store.count(Filter.of(collection_id=[cid]))
            os.write(write, str(counted).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child_said = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and child_said == "4"
    assert store.count(Filter.of(collection_id=[cid])) == 4  # the parent's stream is intact


def test_threads_share_one_store_without_mixing_replies(owner, ids):
    from apps.retrieval.store.socket_client import SocketStore

    store = SocketStore(path=owner.socket, timeout=20)
    store.ensure_collection(dense_size=DENSE_SIZE)
    collections = [next(ids) for _ in range(4)]
    for n, cid in enumerate(collections):
        store.upsert(
            [
                point(collection=cid, document=next(ids), chunk=i, dense=unit(i))
                for i in range(n + 1)
            ]
        )
    errors: list[str] = []

    def worker(n: int, cid: int) -> None:
        for _ in range(25):
            found = store.query_dense(unit(0), flt=Filter.of(collection_id=[cid]), limit=10)
            if len(found) != n + 1 or {p.payload["collection_id"] for p in found} != {cid}:
                errors.append(f"thread {n} got {len(found)} points")

    threads = [threading.Thread(target=worker, args=(n, c)) for n, c in enumerate(collections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- the server backend's failure mode, configuration, import weight ----------------------


@pytest.mark.timeout(30)
def test_an_unreachable_qdrant_server_is_store_unavailable():
    from apps.retrieval.store.server import ServerStore

    store = ServerStore(url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(StoreUnavailable, match="did not answer"):
        store.count(Filter.of(collection_id=[1]))
    with pytest.raises(StoreUnavailable):
        store.ensure_collection(dense_size=DENSE_SIZE)


def test_get_store_follows_the_settings(settings, tmp_path):
    from apps.retrieval.store import get_store, reset_store
    from apps.retrieval.store.server import ServerStore
    from apps.retrieval.store.socket_client import SocketStore

    try:
        settings.QDRANT_URL = ""
        settings.VECTOR_SOCKET = tmp_path / "vs.sock"
        reset_store()
        embedded = get_store()
        assert isinstance(embedded, SocketStore) and embedded.path == tmp_path / "vs.sock"
        assert get_store() is embedded

        settings.QDRANT_URL = "http://qdrant.invalid:6333"
        reset_store()
        server = get_store()  # built without touching the network
        assert isinstance(server, ServerStore) and server.url == "http://qdrant.invalid:6333"
    finally:
        reset_store()


def test_importing_the_store_package_loads_no_qdrant_library():
    code = (
        "import sys, apps.retrieval.store, apps.retrieval.store.protocol, apps.retrieval.sparse;"
        "heavy = [m for m in sys.modules if m.startswith(('qdrant_edge', 'qdrant_client'))];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- the sparse encoder --------------------------------------------------------------------


def test_document_vectors_carry_term_frequency_and_queries_unit_weights():
    [doc] = sparse.encode_documents(["invoice invoice invoice payment"])
    weights = dict(zip(doc.indices, doc.values, strict=True))
    query = sparse.encode_query("invoices payment")
    assert query.values == [1.0] * len(query.indices)
    # Stemming and lower-casing are shared, so "invoices" in a query meets "invoice".
    assert set(query.indices) <= set(weights)
    invoice = next(i for i in query.indices if weights[i] != min(weights.values()))
    assert weights[invoice] > min(weights.values())
    assert len(set(doc.indices)) == len(doc.indices)
