"""Readiness checks: is each part this web process needs answering right now?

Each check runs in its own thread with its own short client timeouts, and the whole set
waits at most READYZ_TIMEOUT_SECONDS (plus a small margin): a hung part shows as down
instead of holding the probe. A check's result says "up" or "down" and, when down, a
short reason built from the error's type only — never a URL, a host name with a password
in it, or a key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import redis
from django.conf import settings
from django.db import connections

from apps.retrieval.index_state import index_summary
from apps.retrieval.store import Filter, build_store
from apps.routing.llm import local_endpoint
from apps.routing.locality import PUBLIC_WARNING, local_model_locality
from apps.routing.model_queue import local_model_queue


class CheckFailed(Exception):
    """A part answered, but not as it should; the message is safe to show."""


def _database() -> None:
    # A connection of this thread only, closed after: the probe never lends a request's
    # connection, nor leaves one open.
    conn = connections.create_connection("default")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        conn.close()


def _redis() -> None:
    timeout = settings.READYZ_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        if not client.ping():
            raise CheckFailed("PING was not answered with PONG")
    finally:
        client.close()


def _vectorstore() -> None:
    store = build_store(timeout=settings.READYZ_TIMEOUT_SECONDS)
    try:
        # A count no real point matches: one cheap round trip through the whole path.
        store.count(Filter.of(collection_id=[0]))
    finally:
        store.close()


def _local_model() -> None:
    import httpx  # heavy (a fifth of a second), and only this probe in the web process uses it

    endpoint = local_endpoint()
    timeout = settings.READYZ_TIMEOUT_SECONDS
    headers = {}
    if settings.LOCAL_LLM_API_KEY:
        headers["Authorization"] = f"Bearer {settings.LOCAL_LLM_API_KEY}"
    # GET /models: served by llama.cpp server and vLLM alike, no tokens generated.
    response = httpx.get(
        endpoint.base_url.rstrip("/") + "/models",
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=timeout),
    )
    if response.status_code != 200:
        raise CheckFailed(f"the model server answered HTTP {response.status_code}")


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "redis": _redis,
    "vectorstore": _vectorstore,
    "local_model": _local_model,
}


def _run(check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except CheckFailed as err:
        return {"status": "down", "error": str(err), "ms": _ms(started)}
    except Exception as err:  # noqa: BLE001 - any failure means "down"
        return {"status": "down", "error": _describe(err), "ms": _ms(started)}
    return {"status": "up", "ms": _ms(started)}


def _describe(err: BaseException) -> str:
    # The type names say what happened (ConnectError, OperationalError, TimeoutError,
    # StoreUnavailable); messages can carry URLs with credentials, so they stay out.
    names = [type(err).__name__]
    cause = err.__cause__ or err.__context__
    if cause is not None and type(cause).__name__ not in names:
        names.append(type(cause).__name__)
    return "not reachable (" + " <- ".join(names) + ")"


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _location() -> dict[str, Any]:
    """Whether the local model's address is public (apps/routing/locality.py). Said
    without the host or its addresses: /readyz answers anyone; the log and the model
    register name them."""
    locality = local_model_locality()
    if locality.is_public:
        return {"public": True, "warning": PUBLIC_WARNING}
    return {"public": False} if not locality.error else {"public": None, "error": "unresolved"}


def _queue() -> dict[str, Any]:
    """The local model's queue (apps/routing/model_queue.py): information for whoever
    looks, never a reason to be unready; a full queue is the model working."""
    try:
        state = local_model_queue().state()
    except Exception as err:  # noqa: BLE001 - shown as unreadable, readiness unchanged
        return {"error": _describe(err)}
    return {"waiting": state.waiting, "slots_busy": state.busy, "slots": state.slots}


def readiness() -> tuple[bool, dict[str, dict[str, Any]]]:
    """(all up?, {part: {"status": "up"|"down", "ms": ..., "error"?: ...}}); the local
    model's part also says whether its address is public ("location") and how many
    requests wait for it ("queue"), the vector store's its index ("index": points,
    segments, graphs built or being built); neither changes readiness."""
    deadline = settings.READYZ_TIMEOUT_SECONDS + 0.5
    pool = ThreadPoolExecutor(max_workers=len(CHECKS) + 2, thread_name_prefix="readyz")
    try:
        location = pool.submit(_location)
        queue = pool.submit(_queue)
        index = pool.submit(index_summary)
        futures = {name: pool.submit(_run, check) for name, check in CHECKS.items()}
        started = time.monotonic()
        results: dict[str, dict[str, Any]] = {}
        for name, future in futures.items():
            left = max(0.0, deadline - (time.monotonic() - started))
            try:
                results[name] = future.result(timeout=left)
            except FutureTimeout:
                results[name] = {
                    "status": "down",
                    "error": f"no answer within {settings.READYZ_TIMEOUT_SECONDS:g} s",
                    "ms": round(deadline * 1000),
                }
        try:
            where = location.result(timeout=max(0.0, deadline - (time.monotonic() - started)))
        except FutureTimeout:
            where = {"public": None, "error": "not resolved in time"}
        results["local_model"]["location"] = where
        try:
            waiting = queue.result(timeout=max(0.0, deadline - (time.monotonic() - started)))
        except FutureTimeout:
            waiting = {"error": "not read in time"}
        results["local_model"]["queue"] = waiting
        try:
            results["vectorstore"]["index"] = index.result(
                timeout=max(0.0, deadline - (time.monotonic() - started))
            )
        except FutureTimeout:
            results["vectorstore"]["index"] = {"error": "not read in time"}
    finally:
        # Do not wait for a hung check: its thread ends when its own timeout fires.
        pool.shutdown(wait=False, cancel_futures=True)
    return all(r["status"] == "up" for r in results.values()), results
