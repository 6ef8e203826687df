"""Graph builds that do not stop search: the half of EdgeStore (edge.py) that builds the
HNSW graphs in a child process over a copy of the shard and swaps the result in
(issue 19; the directories and the child are in generations.py).

qdrant-edge holds the GIL for the whole of optimize() (921 s at 1M points), so an owner
that called it would answer nobody meanwhile. Here the owner only copies (writes wait,
reads go on), journals the writes made while the child builds, and swaps (a replay of the
journal and a pointer rename). A crash at any point leaves a whole store: until the
pointer names the built copy, the old shard, which got every write, serves; after, the
copy has every write in its own WAL.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from apps.retrieval.store import generations
from apps.retrieval.store.protocol import StoreError

T = TypeVar("T")

log = logging.getLogger("enclave.vectorstore")

# What the last graph build left, beside the shards (generations.py): when it ended, how
# many points the store held then (the next build is due GRAPH_BUILD_POINTS later).
BUILD_RECORD_SUFFIX = ".graphs.json"
# The longest a graph build may take before it is stopped (the shard it copied is dropped).
GRAPH_BUILD_TIMEOUT_SECONDS = 6 * 3600.0
# Writes left in the journal when the swap takes the write lock for the last of them.
JOURNAL_TAIL = 16
# Rounds of catching up before it takes the lock anyway (writes faster than the replay).
JOURNAL_ROUNDS = 8
# How long a replaced shard waits for the reads still running on it before it is closed.
RETIRE_WAIT_SECONDS = 60.0


@dataclass
class BuildRecord:
    """One graph build, as index_state() shows it."""

    reason: str
    started_at: float  # Unix time
    stage: str = "copying"  # copying, building, swapping, done, nothing to do, failed
    finished_at: float | None = None
    copy_seconds: float | None = None
    build_seconds: float | None = None
    swap_seconds: float | None = None
    points: int | None = None  # in the copy: what the graphs cover
    replayed_writes: int = 0
    error: str = ""


def _load_shard(path: Path) -> Any:
    import qdrant_edge  # heavy: the Rust engine, loaded only by the process that owns a shard

    return qdrant_edge.EdgeShard.load(str(path))


class GraphBuilds:
    """Mixed into EdgeStore, which sets these up and serialises writes."""

    path: Path
    _shard: Any
    _dir: Path
    _write_lock: threading.Lock

    if TYPE_CHECKING:

        def _writing(self) -> AbstractContextManager[Any]: ...
        def _call(self, what: str, fn: Callable[[], T]) -> T: ...
        def graph_points(self) -> int | None: ...

    def _init_builds(self) -> None:
        # Every acknowledged write from a graph build's copy until its swap, in order.
        self._journal: list[Any] | None = None
        self._build_lock = threading.Lock()
        self._build: BuildRecord | None = None
        self._child: generations.Child | None = None
        # Reads running on each open shard (by id), so a replaced one closes after them.
        self._readers: collections.Counter[int] = collections.Counter()
        self._readers_changed = threading.Condition()

    def _journal_write(self, op: Any) -> None:
        """Called under the write lock after each update the serving shard took."""
        if self._journal is not None:
            self._journal.append(op)

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """The shard that serves now, held open until the read is done (None before the
        collection exists)."""
        with self._readers_changed:
            shard = self._shard
            self._readers[id(shard)] += 1
        try:
            yield shard
        finally:
            with self._readers_changed:
                self._readers[id(shard)] -= 1
                self._readers_changed.notify_all()

    def _stop_build(self) -> None:
        """Called by close(): a build in progress is dropped (its copy goes at the next
        start)."""
        child = self._child
        if child is not None:
            child.stop()

    def optimize(self) -> None:
        """Build the graphs now (or wait for the build under way), without stopping
        search: see build_graphs."""
        self.build_graphs(reason="asked")

    def build_graphs(self, *, reason: str) -> BuildRecord:
        """Run the engine's optimizers over a copy of the shard in a child process and
        serve the result, while this process goes on answering:

        1. copy, under the write lock (reads go on, writes wait): flush, copy the shard's
           directory to the next generation's; from then on every write is journaled;
        2. build, in `python -m apps.retrieval.store.generations DIR`, at a lower CPU
           priority, holding its own GIL, not ours;
        3. swap, under the write lock: open the built copy, replay the journal into it,
           flush, name it active (the commit point), serve it; the old shard is closed
           once the reads on it are done, and its directory removed.

        One build at a time: a second caller waits for the first to end, then builds
        again (the first copied the shard before it was asked: what came since has no
        graph yet). StoreError if the build failed; the shard that served before still
        serves."""
        self._build_lock.acquire()
        try:
            record = self._build = BuildRecord(reason=reason, started_at=time.time())
            self._run_build(record)
            return record
        finally:
            self._build_lock.release()

    def _run_build(self, record: BuildRecord) -> None:
        target = generations.next_dir(self.path)
        try:
            started = time.monotonic()
            with self._writing() as shard:
                self._call("flush before a graph build", shard.flush)
                generations.copy_shard(self._dir, target)
                self._journal = []
            record.copy_seconds = round(time.monotonic() - started, 1)
            record.stage = "building"
            self._child = generations.Child(target)
            built = self._child.run(timeout=GRAPH_BUILD_TIMEOUT_SECONDS)
            record.build_seconds = built["seconds"]
            # What the graphs cover: the points copied; what came meanwhile has none yet,
            # and counts towards the next build (graphs_due).
            record.points = built["points"]
            if not built["changed"]:
                record.stage = "nothing to do"  # already optimal: the copy is dropped
                self._journal = None
                shutil.rmtree(target, ignore_errors=True)
            else:
                record.stage = "swapping"
                self._swap(target, record)
                record.stage = "done"
        except BaseException as err:
            self._journal = None
            shutil.rmtree(target, ignore_errors=True)
            record.stage, record.error = "failed", str(err) or type(err).__name__
            log.warning("graph build failed: %s", record.error)
            raise
        finally:
            self._child = None
            record.finished_at = time.time()
            if record.stage != "failed":
                self._save_record(record)

    def _swap(self, target: Path, record: BuildRecord) -> None:
        """Open the built copy and catch it up with the journal while writes go on (the
        journal may keep growing: a bulk load), then, under the write lock, replay the
        last few writes and serve it. Writes wait only for that last step, not for the
        whole replay (718k journaled points took 105 s under the lock)."""
        started = time.monotonic()
        built = self._call("open the built shard", lambda: _load_shard(target))
        try:
            done = self._replay(built, 0, tail=JOURNAL_TAIL, rounds=JOURNAL_ROUNDS)
            with self._write_lock:
                journal = self._journal
                if self._shard is None or journal is None:
                    raise StoreError("the store was closed during the graph build")
                done = self._replay(built, done, tail=0, rounds=1)
                self._journal = None
                self._call("flush the built shard", built.flush)
                generations.set_active(self.path, target)  # the commit point
                old, old_dir = self._shard, self._dir
                with self._readers_changed:
                    self._shard, self._dir = built, target
                record.replayed_writes = done
        except BaseException:
            built.close()
            raise
        record.swap_seconds = round(time.monotonic() - started, 1)
        self._retire(old, old_dir)

    def _replay(self, built: Any, done: int, *, tail: int, rounds: int) -> int:
        """Replay journal[done:] into `built`, round after round, until at most `tail`
        writes are left or `rounds` are done; returns how many are replayed. The journal
        only grows (under the write lock), so what is read of it here stays valid."""
        for _ in range(rounds):
            journal = self._journal
            if journal is None:
                raise StoreError("the store was closed during the graph build")
            if len(journal) - done <= tail:
                break
            for op in journal[done:]:
                self._call(
                    "replay a write into the built shard", functools.partial(built.update, op)
                )
                done += 1
        return done

    def _retire(self, old: Any, old_dir: Path) -> None:
        with self._readers_changed:
            self._readers_changed.wait_for(
                lambda: self._readers[id(old)] == 0, timeout=RETIRE_WAIT_SECONDS
            )
            del self._readers[id(old)]
        try:
            old.close()
        except Exception as err:  # noqa: BLE001 - the new shard serves; log and go on
            log.warning("closing the replaced shard: %s", err)
        shutil.rmtree(old_dir, ignore_errors=True)

    def _record_file(self) -> Path:
        return self.path.with_name(self.path.name + BUILD_RECORD_SUFFIX)

    def _save_record(self, record: BuildRecord) -> None:
        try:
            self._record_file().write_text(json.dumps(asdict(record)), encoding="utf-8")
        except OSError as err:
            log.warning("could not write the graph build record: %s", err)

    def graphs_due(self, *, every_points: int = 0, retry_seconds: float = 3600.0) -> bool:
        """Whether the store has grown by `every_points` (0: the shard's indexing
        threshold) since the last finished build, and no build runs or failed lately."""
        if self._shard is None or self._build_lock.locked():
            return False
        last = self._build
        if last is not None and last.stage == "failed":
            if time.time() - (last.finished_at or 0) < retry_seconds:
                return False
        every = every_points or self.graph_points() or 0
        if every <= 0:
            return False
        saved = self._saved_record()
        since = saved.points if saved is not None and saved.points is not None else 0
        with self._reading() as shard:
            points = int(self._call("read the shard info", shard.info).points_count)
        return points - since >= every

    def _saved_record(self) -> BuildRecord | None:
        try:
            return BuildRecord(**json.loads(self._record_file().read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def last_build(self) -> BuildRecord | None:
        """The build under way or the last one (this process's, else the one on disk)."""
        return self._build if self._build is not None else self._saved_record()

    def index_state(self) -> dict[str, Any]:
        """Points, segments, vectors in graphs, and the build under way or the last one."""
        with self._reading() as shard:
            info = self._call("read the shard info", shard.info) if shard is not None else None
        last = self.last_build()
        return {
            "backend": "embedded",
            "points": int(info.points_count) if info else 0,
            "segments": int(info.segments_count) if info else 0,
            # Dense and sparse vectors together; a sparse vector is indexed on write.
            "indexed_vectors": int(info.indexed_vectors_count) if info else 0,
            "graph_points": self.graph_points(),
            "building": last is not None and last.finished_at is None,
            "last_build": asdict(last) if last is not None else None,
        }
