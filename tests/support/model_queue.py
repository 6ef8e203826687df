"""Taking the local model's queue from a test: slots held and places taken by others, in
the same Redis queue the chat and the API use (the session's cache prefix), given back
when the block ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from apps.routing.model_queue import ModelQueue, local_model_queue


@dataclass
class Taken:
    queue: ModelQueue
    holders: list[str]  # tickets holding a slot
    waiters: list[str]  # tickets waiting, in turn order (each of another person)


@contextmanager
def model_queue_taken(*, waiting: int = 0) -> Iterator[Taken]:
    """Every slot held, and `waiting` others in line, each of a person of their own.

    Their deadlines are two minutes ahead: no thread of this test needs to keep them, and
    nothing of them outlives a test that dies for longer than that."""
    base = local_model_queue()
    queue = ModelQueue(
        base.client, prefix=base.prefix, slots=base.slots, ttl=120, max_length=10_000, max_wait=1
    )
    tag = uuid.uuid4().hex[:8]
    holders = [f"held-{tag}-{i}" for i in range(base.slots)]
    waiters = [f"wait-{tag}-{i}" for i in range(waiting)]
    try:
        for i, ticket in enumerate(holders):
            assert queue.join(ticket, f"holder-{tag}-{i}") is None, "a slot was taken already"
        for i, ticket in enumerate(waiters):
            queue.join(ticket, f"waiter-{tag}-{i}")
        yield Taken(queue, holders, waiters)
    finally:
        for ticket in holders + waiters:
            queue.leave(ticket)
