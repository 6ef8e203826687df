"""The state of the vector index, as /readyz, /metrics and the embedders page show it
(README "Capacity"): points, segments, and whether the graphs are built, being built
(search goes on meanwhile), or the last build failed."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.retrieval.store import StoreError, build_store


def graphs_word(state: dict[str, Any]) -> str:
    """One word for the graphs: building, failed, built, or none yet."""
    if state.get("building"):
        return "building"
    last = state.get("last_build") or {}
    if last.get("stage") == "failed":
        return "failed"
    if last or state.get("status") == "green":
        return "built"
    return "none yet"


def index_summary(*, timeout: float | None = None) -> dict[str, Any]:
    """{points, segments, graphs, last_build?} or {error}; never raises."""
    store = build_store(timeout=timeout or settings.READYZ_TIMEOUT_SECONDS)
    try:
        state = store.index_state()
    except StoreError as err:
        return {"error": str(err)}
    finally:
        store.close()
    summary: dict[str, Any] = {
        "points": state.get("points", 0),
        "segments": state.get("segments", 0),
        "graphs": graphs_word(state),
    }
    last = state.get("last_build")
    if last:
        summary["last_build"] = {
            key: last.get(key)
            for key in (
                "reason", "stage", "started_at", "finished_at", "copy_seconds",
                "build_seconds", "swap_seconds", "replayed_writes", "error",
            )
        }  # fmt: skip
    return summary
