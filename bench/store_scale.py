"""Scale: the embedded store at 1,000,000 points in 500 collections.

    .venv/bin/python bench/store_scale.py [--points 1000000] [--collections 500]
        [--queries 200] [--data-dir var/bench-store-scale] [--fresh] [--passages N]

What runs: the real `manage.py vectorstore` owner on a data directory kept between runs
(--data-dir), the real retrieve() against it, and the rows it reads (collections, groups,
two readers) in a database of the bench's own (`enclave_bench_store_scale`), kept with
the data directory.

The fill, skipped when the directory's manifest.json records the same points,
collections, passages and embedder and its rows are still in the database (--fresh
refills): every point is shaped like a chunk's (apps/knowledge/points.py: document,
chunk, label, groups, title and section, text, page, offsets, version), documents of 1
to 20 chunks spread over the collections. Its vectors are a real passage's: the passages
of the dev corpora (shared/eval/celerydocs and eval/retrieval/*, ~4,900, --passages
caps them; ~10 passages/s on this machine), embedded once and cached in var/bench-cache;
the dense vector plus Gaussian noise (cosine ~0.9), the BM25 vector as is, so filters,
distances and posting lists look like production. Then optimize() builds the graphs
while this process keeps sending the 10% reader's store queries: their latency and the
longest gap between two answers during the build are printed beside the same after it.
Last, the owner is SIGKILLed right after the fill, and the reopen timed (a crash at the
end of a bulk load: the WAL replays what came since the owner's last flush), then stopped
cleanly.

Printed, for a user who reads 10% of the collections and one who reads 1, interleaved
query by query after a warm-up: store query p50/p95 (the dense and the BM25 query
retrieve() sends, with its filter), retrieve() p50/p95 (readable collections from
PostgreSQL, query embedding, both queries, fusion) and, as the same-run baseline, the
bare query embedding p50/p95, with the ratios between them; the owner's RSS and the data
directory's size on disk. Then the reopen: 10,000 fresh points upserted, the owner
SIGKILLed and a new one started on the same directory (WAL replay), timed to its ready
line, a ping and a first answered query; the same after a clean stop (SIGTERM); and, as
the baseline, an owner starting on an empty directory (the interpreter and Django alone),
with the ratios. The 10,000 points are checked to be back after the replay and deleted
again, so the manifest stays true.

Goals at 1M: retrieve() p95 <= 50 ms for both users, reopen after SIGKILL <= 60 s, the
RSS written down. The machine is shared and noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (  # noqa: E402 - bench/ is on sys.path
    ROOT,
    Passages,
    Tenancy,
    base_passages,
    drop_tenancy,
    fill_points,
    isolate,
    load_tenancy,
    make_collections_and_readers,
    percentile,
    prepare_database,
    tree_rss,
)

DB_NAME = "enclave_bench_store_scale"
BROKER = "redis://127.0.0.1:6379/10"  # nothing is enqueued; kept apart from the others
MANIFEST = "manifest.json"
SHAPE = 1  # of the points; a data directory filled with another shape is refilled
WAL_POINTS = 10_000
DOC_BASE = 50_000_000  # document ids of the generated points, far from real ones
CHUNKS = (1, 3, 8, 20, 4)  # chunks per document, cycled: notes to long manuals
STARTS = tuple(itertools.accumulate((0, *CHUNKS[:-1])))
LABELS = ("public",) * 2 + ("internal",) * 12 + ("confidential",) * 5 + ("restricted",)
CORPORA = [
    ROOT.parent / "shared/eval/celerydocs/corpus.jsonl",
    *sorted((ROOT / "eval/retrieval").glob("*/corpus.jsonl")),
]


def document_of(n: int) -> tuple[int, int]:
    """(document number, chunk index) of the n-th generated point."""
    cycle, r = divmod(n, sum(CHUNKS))
    for k, (start, size) in enumerate(zip(STARTS, CHUNKS, strict=True)):
        if r < start + size:
            return cycle * len(CHUNKS) + k, r - start
    raise AssertionError("unreachable")


def chunk_shape(
    *, tenancy: Tenancy, passages: Passages, embedder: int, first: int, first_document: int
) -> Any:
    """Point number i -> a chunk's id and payload, as apps/knowledge/points.py builds
    them; point `first` starts document `first_document`."""
    from apps.knowledge.points import point_id

    def shape(i: int, w: int) -> tuple[str, dict[str, Any]]:
        number, chunk = document_of(i - first)
        doc = first_document + number
        c = doc % len(tenancy.collections)
        title, _, section = passages.titles[w].partition(" › ")
        text = passages.texts[w]
        return point_id(doc, chunk), {
            "label": LABELS[doc % len(LABELS)],
            "groups": tenancy.grants[c],
            "collection_id": tenancy.collections[c].pk,
            "embedder": embedder,
            "document_id": doc,
            "version": 2 if doc % 10 == 0 else 1,
            "chunk_index": chunk,
            "title": title,
            "section": section,
            "text": text,
            "page": chunk // 3 + 1 if doc % 3 == 0 else None,  # a third are paged (PDF)
            "char_start": chunk * 900,
            "char_end": chunk * 900 + len(text),
        }

    return shape


def disk_bytes(path: Path) -> int:
    """Allocated size, as du counts it."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def pcts(values: list[float]) -> tuple[float, float]:
    return percentile(values, 50), percentile(values, 95)


class Bench:
    def __init__(self, args: argparse.Namespace, passages: Passages, run: Path) -> None:
        from django.conf import settings

        from apps.retrieval.versions import active_version
        from apps.search.fusion import default_fusion

        self.args = args
        self.passages = passages
        self.vectors = args.data_dir / "vectors"
        self.socket = run / "vs.sock"
        self.run = run
        self.embedder = active_version().pk
        self.limit = max(settings.RETRIEVAL_K, default_fusion().candidates)  # as weighted()
        self.owner: Any = None
        self.upsert_s = self.optimize_s = self.fill_killed_s = 0.0

    # --- the owner ------------------------------------------------------------------------

    def start(self, data_dir: Path | None = None, socket: Path | None = None) -> Any:
        from apps.retrieval.store import reset_store
        from tests.support.vectorstore import start_vectorstore

        proc = start_vectorstore(
            data_dir or self.vectors, socket or self.socket, env=dict(os.environ), timeout=1800
        )
        reset_store()
        return proc

    def reopen(self, flt: Any, query: tuple[Any, Any]) -> dict[str, float]:
        """Start the owner on the data directory again; seconds to each sign of life."""
        from apps.retrieval.store import get_store

        started = time.perf_counter()
        self.owner = self.start()
        laps = {"ready": time.perf_counter() - started}
        store = get_store()
        store.ping()
        laps["ping"] = time.perf_counter() - started
        assert self.store_query(store, flt, *query)[0], "no hit after the reopen"
        laps["query"] = time.perf_counter() - started
        return laps

    # --- queries --------------------------------------------------------------------------

    def store_query(self, store: Any, flt: Any, vector: Any, keywords: Any) -> tuple[Any, Any]:
        """The two filtered queries retrieve()'s hybrid ranking sends (Candidates.lists)."""
        dense = store.query_dense(vector, flt=flt, limit=self.limit)
        keyword = (
            store.query_sparse(keywords, flt=flt, limit=self.limit) if keywords.indices else []
        )
        return dense, keyword

    def flt(self, user: Any) -> Any:
        from apps.knowledge.selectors import readable_collection_ids
        from apps.retrieval.store import Filter

        # What search.candidates_for builds for this reader.
        return Filter.of(collection_id=readable_collection_ids(user), embedder=[self.embedder])

    def search_while(
        self, busy: threading.Thread | None, flt: Any, queries: list, count: int = 0
    ) -> str:
        """Store queries one after the other while `busy` runs (or `count` of them):
        latency p50/p95/max, the longest wait for an answer, and refusals."""
        from apps.retrieval.store import StoreUnavailable, get_store

        store = get_store()
        laps, failed, gap = [], 0, 0.0
        last = time.perf_counter()
        for n in itertools.count():
            if (busy is not None and not busy.is_alive()) or (busy is None and n >= count):
                break
            t = time.perf_counter()
            try:
                self.store_query(store, flt, *queries[n % len(queries)])
                laps.append((time.perf_counter() - t) * 1000)
            except StoreUnavailable:
                failed += 1
                time.sleep(0.1)  # an owner that refuses at once must not be spun against
            gap, last = max(gap, time.perf_counter() - last), time.perf_counter()
        if not laps:
            return f"no query answered ({failed} refused or timed out)"
        p50, p95 = pcts(laps)
        return (
            f"{len(laps):4d} queries  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(laps):7.1f}"
            f" ms  longest gap between answers {gap * 1000:7.0f} ms  failed {failed}"
        )


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--collections", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--passages", type=int, default=None, help="cap on embedded passages")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var/bench-store-scale")
    parser.add_argument("--fresh", action="store_true", help="refill even if the data matches")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    # The socket and the empty-start baseline live in a short temporary path (a Unix
    # socket path has at most 107 bytes; --data-dir may be longer).
    run = Path(tempfile.mkdtemp(prefix="enclave-scale-"))
    os.environ.pop("QDRANT_URL", None)  # the owner is embedded-only
    isolate(db_url=prepare_database(DB_NAME), var=args.data_dir, broker=BROKER)
    os.environ["VECTOR_SOCKET"] = str(run / "vs.sock")
    from django.conf import settings

    settings.QDRANT_URL = ""
    settings.VECTOR_DATA_DIR = args.data_dir / "vectors"
    settings.VECTOR_SOCKET = run / "vs.sock"

    passages = base_passages(CORPORA, limit=args.passages, cache_dir=ROOT / "var/bench-cache")
    how = "read from var/bench-cache" if passages.cached else f"{passages.embed_seconds:.0f} s"
    print(
        f"{len(passages.texts)} distinct passages of {len(CORPORA)} corpora embedded ({how}), "
        f"{len(passages.questions)} questions"
    )
    bench = Bench(args, passages, run)
    try:
        measure(bench)
    finally:
        if bench.owner is not None:
            from tests.support.vectorstore import stop_vectorstore

            stop_vectorstore(bench.owner)
        shutil.rmtree(run, ignore_errors=True)


def prepare(bench: Bench) -> Tenancy:
    """The filled data directory of the manifest, or a fresh fill; the owner running."""
    from apps.retrieval.store import Filter, get_store

    args = bench.args
    want = {
        "shape": SHAPE,
        "points": args.points,
        "collections": args.collections,
        "passages": bench.passages.key,
        "embedder": bench.embedder,
    }
    manifest = read_manifest(args.data_dir)
    tenancy = None
    if manifest and not args.fresh and all(manifest.get(k) == v for k, v in want.items()):
        tenancy = load_tenancy(tag=manifest["tag"], collection_ids=manifest["collection_ids"])
        if tenancy is None or "one" not in tenancy.readers:
            print(f"the manifest's rows are gone from {DB_NAME}: filling afresh")
            tenancy = None
    elif args.fresh:
        print("--fresh: filling afresh")
    elif manifest:
        print(f"{args.data_dir} holds another fill ({manifest.get('points')} points): refilling")
    if tenancy is not None:
        bench.owner = bench.start()
        found = get_store().count(Filter.of(embedder=[bench.embedder]))
        if found == args.points:
            print(
                f"reusing the fill of {manifest['filled']} in {args.data_dir}: upserts took "
                f"{manifest['upsert_s']:.0f} s, optimize() {manifest['optimize_s']:.0f} s, "
                f"reopen after a SIGKILL right after it {manifest['fill_killed_s']:.1f} s"
            )
            return tenancy
        print(f"the store holds {found} points, the manifest says {args.points}: refilling")
        from tests.support.vectorstore import stop_vectorstore

        stop_vectorstore(bench.owner)
        bench.owner = None
    drop_tenancy("scale")  # every earlier fill's rows, a manifest's or an interrupted one's
    (args.data_dir / MANIFEST).unlink(missing_ok=True)  # written again once the fill is whole
    shutil.rmtree(bench.vectors, ignore_errors=True)
    tag = f"scale-{int(time.time())}"
    tenancy = make_collections_and_readers(tag=tag, count=args.collections, one_reader=True)
    bench.owner = bench.start()
    fill(bench, tenancy)
    manifest = {
        **want,
        "tag": tag,
        "collection_ids": [c.pk for c in tenancy.collections],
        "filled": datetime.now(UTC).isoformat(timespec="seconds"),
        "upsert_s": bench.upsert_s,
        "optimize_s": bench.optimize_s,
        "fill_killed_s": bench.fill_killed_s,
    }
    (args.data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return tenancy


def fill(bench: Bench, tenancy: Tenancy) -> None:
    from apps.retrieval.embeddings import embed_query
    from apps.retrieval.sparse import encode_query
    from apps.retrieval.store import get_store

    store = get_store()
    store.ensure_collection(dense_size=bench.passages.dense.shape[1])
    points = bench.args.points
    print(f"filling {points:,} points into {len(tenancy.collections)} collections:")
    shape = chunk_shape(
        tenancy=tenancy,
        passages=bench.passages,
        embedder=bench.embedder,
        first=0,
        first_document=DOC_BASE,
    )
    bench.upsert_s = fill_points(
        store,
        passages=bench.passages,
        count=points,
        shape=shape,
        report_every=max(1000, points // 10 // 1000 * 1000),
    )
    print(
        f"upserted {points:,} points in {bench.upsert_s:.0f} s ({points / bench.upsert_s:,.0f}/s)"
    )

    queries = [(embed_query(q), encode_query(q)) for q in bench.passages.questions]
    flt = bench.flt(tenancy.readers["10%"])
    if hasattr(store, "index_state"):
        print(f"index_state() before optimize(): {store.index_state()}")
    errors: list[BaseException] = []

    def build() -> None:
        try:
            get_store().optimize()  # a connection of this thread's own
        except BaseException as err:  # reported below, in the main thread
            errors.append(err)

    started = time.perf_counter()
    builder = threading.Thread(target=build, name="optimize")
    builder.start()
    during = bench.search_while(builder, flt, queries)
    builder.join()
    bench.optimize_s = time.perf_counter() - started
    if errors:
        raise errors[0]
    print(f"optimize() took {bench.optimize_s:.1f} s")
    if hasattr(store, "index_state"):
        print(f"index_state() after optimize(): {store.index_state()}")
    after = bench.search_while(None, flt, queries, count=max(20, min(200, len(queries))))
    print("store query of the 10% reader (dense + BM25):")
    print(f"  during the graph build  {during}")
    print(f"  after it                {after}")

    # A crash right after a bulk load: the owner flushes every VECTOR_FLUSH_SECONDS, so
    # the WAL replays at most that much of the fill. A clean stop after it flushes, so
    # the measurements that follow see what every later run sees.
    from tests.support.vectorstore import stop_vectorstore

    stop_vectorstore(bench.owner, sig=signal.SIGKILL)
    bench.owner = None
    bench.fill_killed_s = bench.reopen(flt, queries[0])["query"]
    print(
        f"reopen after a SIGKILL right after the fill: first query in "
        f"{bench.fill_killed_s:.1f} s"
    )
    stop_vectorstore(bench.owner)
    bench.owner = bench.start()


def measure(bench: Bench) -> None:
    from apps.retrieval.embeddings import embed_query
    from apps.retrieval.sparse import encode_query
    from apps.retrieval.store import Filter, get_store
    from apps.search.search import retrieve
    from tests.support.vectorstore import stop_vectorstore

    args = bench.args
    tenancy = prepare(bench)
    store = get_store()
    users = {"10%": tenancy.readers["10%"], "one": tenancy.readers["one"]}
    filters = {name: bench.flt(user) for name, user in users.items()}
    sizes = {name: len(f.must["collection_id"]) for name, f in filters.items()}
    print(
        f"readers: 10% reads {sizes['10%']} of {args.collections} collections "
        f"(~{args.points * sizes['10%'] // args.collections:,} points), "
        f"one reads {sizes['one']} (~{args.points // args.collections:,})"
    )
    timings: dict[str, list[float]] = {
        k: [] for k in ("embed", "store 10%", "store one", "retrieve 10%", "retrieve one")
    }
    questions = bench.passages.questions
    for n in range(args.queries + 10):
        question = questions[n % len(questions)]
        laps = {}
        t = time.perf_counter()
        vector = embed_query(question)
        laps["embed"] = time.perf_counter() - t
        keywords = encode_query(question)
        for name, user in users.items():
            t = time.perf_counter()
            bench.store_query(store, filters[name], vector, keywords)
            laps[f"store {name}"] = time.perf_counter() - t
            t = time.perf_counter()
            r = retrieve(user=user, question=question)
            laps[f"retrieve {name}"] = time.perf_counter() - t
            assert r.hits and {h.collection_id for h in r.hits} <= set(r.collection_ids)
        if n >= 10:  # the first ten warm caches and threads
            for key, seconds in laps.items():
                timings[key].append(seconds * 1000)
    p = {key: pcts(values) for key, values in timings.items()}
    print(f"{args.queries} questions, hybrid, k=default, interleaved:")
    rows = (
        ("query embedding alone (baseline)", "embed", ""),
        ("store query, 10% reader", "store 10%", ""),
        ("store query, 1-collection reader", "store one", ""),
        ("retrieve(), 10% reader", "retrieve 10%", "  (goal p95 <= 50 ms)"),
        ("retrieve(), 1-collection reader", "retrieve one", "  (goal p95 <= 50 ms)"),
    )
    for label, key, goal in rows:
        print(f"  {label:34s} p50 {p[key][0]:6.1f} ms  p95 {p[key][1]:6.1f} ms{goal}")

    def ratio(a: str, b: str) -> str:
        return f"p50 {p[a][0] / p[b][0]:.2f}x, p95 {p[a][1] / p[b][1]:.2f}x"

    print(
        f"  ratios: retrieve()/embedding, 10% {ratio('retrieve 10%', 'embed')}; "
        f"1-collection {ratio('retrieve one', 'embed')}"
    )
    print(
        f"          10%/1-collection, store query {ratio('store 10%', 'store one')}; "
        f"retrieve() {ratio('retrieve 10%', 'retrieve one')}"
    )
    rss = tree_rss(bench.owner.pid)
    print(
        f"owner RSS {rss / 2**20:,.0f} MiB; data directory {disk_bytes(bench.vectors) / 2**20:,.0f}"
        f" MiB on disk ({bench.vectors})"
    )

    # --- reopen ---------------------------------------------------------------------------
    first_document = DOC_BASE + document_of(args.points - 1)[0] + 1
    extra_docs = sorted({first_document + document_of(j)[0] for j in range(WAL_POINTS)})
    extra = Filter.of(document_id=extra_docs, embedder=[bench.embedder])
    shape = chunk_shape(
        tenancy=tenancy,
        passages=bench.passages,
        embedder=bench.embedder,
        first=args.points,
        first_document=first_document,
    )
    query = (embed_query(questions[0]), encode_query(questions[0]))
    upsert_s = fill_points(
        store, passages=bench.passages, count=WAL_POINTS, shape=shape, first=args.points, seed=12
    )
    wal = sum(disk_bytes(w) for w in bench.vectors.rglob("wal") if w.is_dir())
    print(
        f"reopen: {WAL_POINTS:,} fresh points upserted in {upsert_s:.1f} s (WAL folders now "
        f"{wal / 2**20:,.0f} MiB), then SIGKILL"
    )
    stop_vectorstore(bench.owner, sig=signal.SIGKILL)
    bench.owner = None
    killed = bench.reopen(filters["10%"], query)
    back = get_store().count(extra)
    rss_killed = tree_rss(bench.owner.pid)
    t = time.perf_counter()
    stop_vectorstore(bench.owner)
    stop_s = time.perf_counter() - t
    bench.owner = None
    clean = bench.reopen(filters["10%"], query)
    rss_clean = tree_rss(bench.owner.pid)
    get_store().delete(extra)
    left = get_store().count(Filter.of(embedder=[bench.embedder]))
    assert left == args.points, f"{left} points after deleting the fresh ones, not {args.points}"

    empty_dir, empty_sock = bench.run / "empty", bench.run / "empty.sock"
    from apps.retrieval.store.socket_client import SocketStore

    t = time.perf_counter()
    empty = bench.start(empty_dir, empty_sock)
    empty_ready = time.perf_counter() - t
    SocketStore(path=empty_sock).ping()
    empty_ping = time.perf_counter() - t
    stop_vectorstore(empty)

    def laps(found: dict[str, float]) -> str:
        return (
            f"ready {found['ready']:5.1f} s  ping {found['ping']:5.1f} s  "
            f"first query {found['query']:5.1f} s"
        )

    print(
        f"  after SIGKILL (WAL replay)  {laps(killed)}  (goal <= 60 s); "
        f"{back:,}/{WAL_POINTS:,} fresh points back; RSS {rss_killed / 2**20:,.0f} MiB"
    )
    print(
        f"  after a clean stop          {laps(clean)}  (the stop took {stop_s:.1f} s); "
        f"RSS {rss_clean / 2**20:,.0f} MiB"
    )
    print(f"  empty directory (baseline)  ready {empty_ready:5.1f} s  ping {empty_ping:5.1f} s")
    print(
        f"  ratios of the time to an answer: SIGKILL/clean {killed['query'] / clean['query']:.2f}x,"
        f" SIGKILL/empty {killed['query'] / empty_ping:.2f}x,"
        f" clean/empty {clean['query'] / empty_ping:.2f}x"
    )
    assert back == WAL_POINTS, "acknowledged points were lost in the SIGKILL"


if __name__ == "__main__":
    main()
