"""Prometheus counters of the chat and the egress gate, low enough that both may count.

They live in this process (`REGISTRY`, not prometheus_client's global one) and are
incremented by one-line calls from the chat and the gate. Recording never raises: a metrics
bug must not fail an answer. apps/ops/metrics.py serves them at /metrics with the gauges
read at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds; answers from a small local model take 1-30 s, first tokens 0.1-5 s.
_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 90, 150)
_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 30)

QUESTIONS = Counter("enclave_questions", "Questions asked in the chat.", registry=REGISTRY)
ANSWER_SECONDS = Histogram(
    "enclave_answer_seconds",
    "Time from the model call to the end of the streamed answer.",
    ["where", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
FIRST_TOKEN_SECONDS = Histogram(
    "enclave_answer_first_token_seconds",
    "Time from the model call to the first streamed piece of the answer.",
    ["where"],
    buckets=_FIRST_TOKEN_BUCKETS,
    registry=REGISTRY,
)
EGRESS_DECISIONS = Counter(
    "enclave_egress_decisions",
    "Egress gate decisions, once per reason code (a denial usually has several).",
    ["outcome", "reason"],
    registry=REGISTRY,
)
MODEL_BUSY = Counter(
    "enclave_model_busy",
    "Requests told the local model is busy: the queue was full, or they waited too long.",
    ["reason"],
    registry=REGISTRY,
)


# What the recorders read of the callers' values. The real types (the model call's
# StreamResult, the gate's Decision) live in apps.routing, above this module.


class CallTimes(Protocol):
    @property
    def total_s(self) -> float: ...

    @property
    def first_token_s(self) -> float | None: ...


class _Coded(Protocol):
    @property
    def code(self) -> str: ...


class Decided(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def reasons(self) -> Sequence[_Coded]: ...


def question_asked() -> None:
    try:
        QUESTIONS.inc()
    except Exception:  # noqa: BLE001 - metrics never break the chat
        log.exception("metrics: question_asked failed")


def answer_finished(*, where: str, result: CallTimes, failed: bool) -> None:
    """Record one model call from its StreamResult (total_s, first_token_s)."""
    try:
        outcome = "failed" if failed else "ok"
        ANSWER_SECONDS.labels(where=where, outcome=outcome).observe(float(result.total_s))
        if result.first_token_s is not None:
            FIRST_TOKEN_SECONDS.labels(where=where).observe(float(result.first_token_s))
    except Exception:  # noqa: BLE001 - metrics never break the chat
        log.exception("metrics: answer_finished failed")


def model_busy(*, reason: str) -> None:
    """One request refused by the local model's queue: `reason` "full" or "waited"."""
    try:
        MODEL_BUSY.labels(reason=reason).inc()
    except Exception:  # noqa: BLE001 - metrics never break the chat
        log.exception("metrics: model_busy failed")


def egress_decided(decision: Decided) -> None:
    """Count a gate Decision by outcome and by each of its reason codes."""
    try:
        outcome = "allowed" if decision.allowed else "denied"
        codes = sorted({r.code for r in decision.reasons}) or ["none"]
        for code in codes:
            EGRESS_DECISIONS.labels(outcome=outcome, reason=code).inc()
    except Exception:  # noqa: BLE001 - metrics never break the gate
        log.exception("metrics: egress_decided failed")
