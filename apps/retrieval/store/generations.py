"""Where the embedded store's shard lives on disk, and the child process that builds its
graphs (apps/retrieval/store/edge.py, EdgeStore.build_graphs).

A graph build works on a copy of the shard, so the directory that serves changes: the
first shard is `<data_dir>/<collection>` (as every store before issue 19 has it), later
ones `<data_dir>/<collection>.g<N>`, and `<data_dir>/<collection>.active` names the one
that serves. The pointer is replaced atomically (write, fsync, rename, fsync of the
folder), so after a crash it names either the old shard or the new one, each complete.
Whatever else is there is a leftover of a build that did not finish, removed when the
owner starts.

Nothing heavy is imported here; the child (`python -m apps.retrieval.store.generations
DIR`) imports qdrant-edge itself and needs no Django.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from apps.retrieval.store.protocol import StoreError

POINTER_SUFFIX = ".active"
# The child runs at a lower CPU priority: on a small machine, search comes first.
CHILD_NICENESS = 10


def _pointer(path: Path) -> Path:
    return path.with_name(path.name + POINTER_SUFFIX)


def _generation(path: Path, directory: Path) -> int | None:
    if directory == path:
        return 0
    m = re.fullmatch(re.escape(path.name) + r"\.g(\d+)", directory.name)
    return int(m.group(1)) if m else None


def active_dir(path: Path) -> Path:
    """The shard directory that serves `path` (the collection's own name)."""
    pointer = _pointer(path)
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return path
    except OSError as err:
        raise StoreError(f"could not read {pointer}: {err}") from err
    directory = path.with_name(name)
    if _generation(path, directory) is None or not directory.is_dir():
        raise StoreError(
            f"{pointer} names {name!r}, which is not a shard directory of {path.name}; "
            "restore it, or remove it to serve the first shard"
        )
    return directory


def next_dir(path: Path) -> Path:
    """A fresh directory name for the next shard (it does not exist yet)."""
    numbers = [
        n for d in path.parent.glob(path.name + ".g*") if (n := _generation(path, d)) is not None
    ]
    target = path.with_name(f"{path.name}.g{max(numbers, default=0) + 1}")
    return target


def set_active(path: Path, directory: Path) -> None:
    """Make `directory` the serving shard: durable once this returns."""
    pointer = _pointer(path)
    tmp = pointer.with_name(pointer.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(directory.name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, pointer)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def remove_stale(path: Path, active: Path) -> list[Path]:
    """Remove every shard directory of `path` but the active one (leftovers of builds
    that did not finish, or the shard a finished build replaced). Returns what went."""
    removed = []
    candidates = [path, *path.parent.glob(path.name + ".g*")]
    for d in candidates:
        if d != active and d.is_dir() and _generation(path, d) is not None:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def copy_shard(source: Path, target: Path) -> None:
    """Copy a flushed, quiet shard directory (the caller holds the write lock)."""
    if target.exists():
        shutil.rmtree(target)
    try:
        shutil.copytree(source, target, symlinks=True)
    except OSError as err:
        shutil.rmtree(target, ignore_errors=True)
        raise StoreError(
            f"could not copy the vector data for a graph build ({err}); "
            f"the build needs as much free disk again as {source.name} takes"
        ) from err


class Child:
    """The graph-building child process over one copied shard."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._proc: subprocess.Popen[str] | None = None

    def run(self, *, timeout: float) -> dict[str, Any]:
        """Build; returns what the child printed ({"changed": bool, ...}). StoreError if
        it failed, was stopped, or ran past `timeout` seconds."""
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-m", "apps.retrieval.store.generations", str(self.directory)],
            cwd=Path(__file__).resolve().parents[3],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            self.stop()
            raise StoreError(f"the graph build ran past {timeout:g} s and was stopped") from expired
        if self._proc.returncode != 0:
            tail = (err or "").strip().splitlines()[-1:] or [f"exit {self._proc.returncode}"]
            raise StoreError(f"the graph build failed: {tail[0]}")
        try:
            result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError) as bad:
            raise StoreError("the graph build printed no result") from bad
        return result

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def _build(directory: Path) -> dict[str, Any]:
    import qdrant_edge  # heavy, and only this child process needs it here

    os.nice(CHILD_NICENESS)
    started = time.monotonic()
    shard = qdrant_edge.EdgeShard.load(str(directory))
    try:
        changed = bool(shard.optimize())
        info = shard.info()
        shard.flush()
    finally:
        shard.close()
    return {
        "changed": changed,
        "seconds": round(time.monotonic() - started, 1),
        "points": info.points_count,
        "segments": info.segments_count,
        "indexed_vectors": info.indexed_vectors_count,
    }


if __name__ == "__main__":
    print(json.dumps(_build(Path(sys.argv[1]))))
