"""One collection on a Qdrant server (or qdrant-client's local mode): the client, the
translation of its errors, and the collection's snapshots.

ServerStore builds the VectorStore operations on this. Client and transport errors become
StoreError / StoreUnavailable here, so no qdrant or httpx exception type reaches callers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from apps.retrieval.store.protocol import StoreError, StoreUnavailable

T = TypeVar("T")

# Statuses that mean "the server (or a proxy in front of it) is not able to answer now",
# as opposed to "the request is wrong": the caller should retry later.
_UNAVAILABLE_STATUSES = {408, 429, 502, 503, 504}


class ServerCollection:
    def __init__(
        self, *, url: str, api_key: str, location: str | None, collection: str, timeout: float
    ) -> None:
        if not url and not location:
            raise StoreError("ServerStore needs a url (QDRANT_URL) or a location (':memory:')")
        self.url = url
        self.location = location
        self.collection = collection
        self._api_key = api_key or None
        self._timeout = max(1, math.ceil(timeout))
        self._client_lock = threading.Lock()
        self._client: Any = None

    @property
    def _where(self) -> str:
        return self.url or f"local Qdrant {self.location}"

    def _get_client(self) -> Any:
        # Built on first use, so get_store() and the web process's start never touch the
        # network; check_compatibility would make a request at construction.
        with self._client_lock:
            if self._client is None:
                from qdrant_client import QdrantClient  # heavy: loaded on the first call

                if self.location:
                    self._client = QdrantClient(location=self.location)
                else:
                    self._client = QdrantClient(
                        url=self.url,
                        api_key=self._api_key,
                        timeout=self._timeout,
                        check_compatibility=False,
                    )
            return self._client

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        # httpx and qdrant-client load with the first call, not with this module.
        import httpx  # heavy
        from qdrant_client.http.exceptions import (  # heavy
            ResponseHandlingException,
            UnexpectedResponse,
        )

        try:
            return fn(self._get_client())
        except StoreError:
            raise
        except (
            ResponseHandlingException,
            httpx.TransportError,
            ConnectionError,
            TimeoutError,
        ) as err:
            source = getattr(err, "source", err)
            raise StoreUnavailable(
                f"the Qdrant server at {self._where} did not answer while trying to {what} "
                f"({type(source).__name__}: {source}); check QDRANT_URL and that it is running"
            ) from err
        except UnexpectedResponse as err:
            detail = _response_detail(err)
            if err.status_code in _UNAVAILABLE_STATUSES:
                raise StoreUnavailable(
                    f"the Qdrant server at {self._where} is unavailable while trying to {what} "
                    f"(HTTP {err.status_code}: {detail})"
                ) from err
            raise StoreError(
                f"the Qdrant server refused to {what} (HTTP {err.status_code}: {detail})"
            ) from err
        except Exception as err:
            raise StoreError(f"vector store could not {what}: {err}") from err

    def _exists(self) -> bool:
        return bool(
            self._call("check the collection", lambda c: c.collection_exists(self.collection))
        )

    def _read(self, what: str, fn: Callable[[Any], T], empty: T) -> T:
        """A read on a collection that does not exist yet finds nothing (fresh install).

        Only when the read fails do we pay a round trip to learn whether that is why.
        """
        try:
            return self._call(what, fn)
        except StoreUnavailable:
            raise
        except StoreError:
            if not self._exists():
                return empty
            raise

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: S110 - closing is best effort; nothing to report
                pass

    # --- snapshots (manage.py vectorstore_snapshot; not part of the VectorStore protocol) --

    def snapshot_create(self) -> dict[str, Any]:
        """Have the server write a snapshot of the collection; its description."""
        if not self._exists():
            raise StoreError(f"there is no collection {self.collection!r} to snapshot")
        found = self._call(
            "create a snapshot", lambda c: c.create_snapshot(self.collection, wait=True)
        )
        if found is None:
            raise StoreError("the Qdrant server did not describe the snapshot it made")
        return _snapshot_dict(found)

    def snapshot_list(self) -> list[dict[str, Any]]:
        """The collection's snapshots on this node, oldest first."""
        found = self._call("list snapshots", lambda c: c.list_snapshots(self.collection))
        return sorted((_snapshot_dict(d) for d in found), key=lambda d: d["created"] or "")

    def snapshot_delete(self, name: str) -> None:
        self._call(
            f"delete the snapshot {name}",
            lambda c: c.delete_snapshot(self.collection, name, wait=True),
        )

    def snapshot_url(self, name: str) -> str:
        """Where the server serves the snapshot file (GET, with the api-key header)."""
        if not self.url:
            raise StoreError("a local Qdrant has no snapshot files to download")
        return (
            f"{self.url.rstrip('/')}/collections/{quote(self.collection, safe='')}"
            f"/snapshots/{quote(name, safe='')}"
        )


def _snapshot_dict(description: Any) -> dict[str, Any]:
    """The fields of qdrant-client's SnapshotDescription that the command prints."""
    fields = {"name": "name", "created": "creation_time", "size": "size", "checksum": "checksum"}
    return {ours: getattr(description, theirs) for ours, theirs in fields.items()}


def _response_detail(err: Any) -> str:
    try:
        status = err.structured().get("status")
        if isinstance(status, dict) and status.get("error"):
            return str(status["error"])
    except Exception:  # noqa: S110 - fall back to the raw text below
        pass
    return (err.reason_phrase or "").strip() or "no detail"
