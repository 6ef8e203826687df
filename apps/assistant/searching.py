"""How many chat searches one web process runs at once: CHAT_SEARCHES_AT_ONCE, the others
wait their turn, roughly in the order they came.

A search (the query's embedding, the store, and the scoring of every passage sentence for
the evidence) is CPU work in the web process, on the cores the local model also runs on.
Run all at once, as many as there are threads, they share the cores and the interpreter
evenly: each takes as long as all of them together, the model's decoding gets a small
share of the cores, and a question that has just come in waits behind them for the
interpreter before it can even say its place in the model's line (which it says before
its search, apps/assistant/services.py). In turn, the first searches end as soon as they
would alone, the head of the model's line has its prompt ready early, and the rest wait
with their place already shown.

A question that holds the model's slot already searches at once: the model waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=1)
def _searches(at_once: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(at_once)


@contextmanager
def search_turn(*, holds_model: bool) -> Iterator[None]:
    """The block runs once fewer than CHAT_SEARCHES_AT_ONCE searches of this process run
    (0: no limit); at once when `holds_model` (the model's slot waits on this search)."""
    at_once = settings.CHAT_SEARCHES_AT_ONCE
    if holds_model or not at_once:
        yield
        return
    with _searches(at_once):
        yield
