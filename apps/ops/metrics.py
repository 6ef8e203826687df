"""/metrics: the counters of apps/core/metrics.py, plus gauges that describe shared state.

Gauges that describe shared state — the Celery queue depth and the local model's queue in
Redis, and the documents by status in PostgreSQL — are read when /metrics is scraped
(`StateCollector`), so every web process reports the same, current values.

Several gunicorn worker processes: set PROMETHEUS_MULTIPROC_DIR to an empty folder (the
image does, docker/gunicorn.conf.py empties it at start) and each process writes its
counters there; a scrape of any process then sums all of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db.models import Count
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from apps.core.metrics import REGISTRY
from apps.knowledge.models import Document
from apps.retrieval.index_state import index_summary
from apps.routing.model_queue import local_model_queue

__all__ = ["REGISTRY", "StateCollector", "exposition"]

log = logging.getLogger(__name__)

QUEUES = ("ingest", "default")
# kombu's Redis transport keeps one list per priority step; priority 0 is the plain name.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


class StateCollector(Collector):
    """Gauges read at scrape time from Redis and PostgreSQL."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._queue_depth()
        yield from self._model_queue()
        yield self._documents()
        yield from self._vector_index()

    def _vector_index(self) -> list[GaugeMetricFamily]:
        """The vector index (apps/retrieval/index_state.py)."""
        points = GaugeMetricFamily("enclave_vector_points", "Points in the vector store.")
        building = GaugeMetricFamily(
            "enclave_vector_graphs_building", "1 while the vector graphs are being built."
        )
        up = GaugeMetricFamily(
            "enclave_vector_index_up", "1 if the vector store's index state could be read."
        )
        summary = index_summary()
        if "error" in summary:
            log.warning("metrics: vector index unreadable")
            up.add_metric([], 0)
            return [up]
        points.add_metric([], summary["points"])
        building.add_metric([], 1 if summary["graphs"] == "building" else 0)
        up.add_metric([], 1)
        return [points, building, up]

    def _model_queue(self) -> list[GaugeMetricFamily]:
        """The local model's fair queue (apps/routing/model_queue.py)."""
        waiting = GaugeMetricFamily(
            "enclave_model_queue_waiting", "Requests waiting for a slot of the local model."
        )
        busy = GaugeMetricFamily(
            "enclave_model_slots_busy", "Slots of the local model held by a request now."
        )
        slots = GaugeMetricFamily(
            "enclave_model_slots", "Requests the local model takes at once (LOCAL_LLM_SLOTS)."
        )
        up = GaugeMetricFamily(
            "enclave_model_queue_up", "1 if the local model's queue could be read from Redis."
        )
        queue = local_model_queue()
        slots.add_metric([], queue.slots)
        try:
            state = queue.state()
        except Exception as err:  # noqa: BLE001 - a scrape reports the part as down
            log.warning("metrics: model queue unreadable: %s", type(err).__name__)
            up.add_metric([], 0)
            return [slots, up]
        waiting.add_metric([], state.waiting)
        busy.add_metric([], state.busy)
        up.add_metric([], 1)
        return [waiting, busy, slots, up]

    def _queue_depth(self) -> list[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "enclave_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        up = GaugeMetricFamily(
            "enclave_queue_depth_up", "1 if the queue depth could be read from Redis."
        )
        try:
            client = redis.Redis.from_url(
                settings.CELERY_BROKER_URL,
                socket_connect_timeout=settings.READYZ_TIMEOUT_SECONDS,
                socket_timeout=settings.READYZ_TIMEOUT_SECONDS,
            )
            try:
                prefix = settings.CELERY_KEY_PREFIX
                pipe = client.pipeline(transaction=False)
                for queue in QUEUES:
                    for step in _PRIORITY_STEPS:
                        name = queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}"
                        pipe.llen(f"{prefix}{name}")
                lengths = pipe.execute()
            finally:
                client.close()
        except Exception as err:  # noqa: BLE001 - a scrape reports the part as down
            log.warning("metrics: queue depth unreadable: %s", type(err).__name__)
            up.add_metric([], 0)
            return [depth, up]
        steps = len(_PRIORITY_STEPS)
        for i, queue in enumerate(QUEUES):
            depth.add_metric([queue], sum(lengths[i * steps : (i + 1) * steps]))
        up.add_metric([], 1)
        return [depth, up]

    def _documents(self) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(
            "enclave_documents", "Documents by ingestion status.", labels=["status"]
        )
        counts = dict.fromkeys(Document.Status.values, 0)
        try:
            for row in Document.objects.values("status").annotate(n=Count("id")):
                counts[row["status"]] = row["n"]
        except Exception as err:  # noqa: BLE001 - a scrape reports the part as down
            log.warning("metrics: documents unreadable: %s", type(err).__name__)
            return gauge
        for status, n in sorted(counts.items()):
            gauge.add_metric([status], n)
        return gauge


def exposition() -> bytes:
    """The text a scrape gets: this process's (or all processes') counters, plus state."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    return generate_latest(registry) + generate_latest(state)
