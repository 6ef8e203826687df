"""The fair queue in front of the local model: it takes LOCAL_LLM_SLOTS requests at once,
and the others wait their turn, round-robin across people and first come, first served
within one person's questions, so one person's ten questions do not hold back nine
colleagues.

It lives in Redis (the cache's, CACHE_URL), so every web process and thread shares one
queue. Under the prefix `<CACHE_KEY_PREFIX>:modelqueue:`:

- `slots`: sorted set, ticket → deadline (Redis server time): the requests the model
  has now;
- `rotation`: list of user keys with a waiting ticket, each once, in turn order;
- `user:<key>`: list of that user's waiting tickets, oldest first;
- `waiting`: sorted set, ticket → deadline, of every waiting ticket; `owner`: hash,
  ticket → user key.

A deadline is MODEL_QUEUE_SLOT_TTL_SECONDS ahead and is pushed on while its holder lives
(a thread of the request's own, from joining to leaving, and a waiter's polls), so a
process that dies holds neither a place nor a slot for longer than that. Every change
runs in one Lua script (apps/routing/model_queue_lua.py), which first drops what is past
its deadline and hands free slots to the heads of the turn order; times are the Redis
server's, the same for every machine.

Redis unreachable: the request goes to the model unqueued, and the log says so. The
queue is there to share the model fairly, and an outage of it must not stop answers
(as the question rate limit fails open, apps/accounts/ratelimit.py).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType

import redis
from django.conf import settings

from apps.core import metrics as core_metrics
from apps.routing import model_queue_lua as lua
from apps.routing.llm import ModelUnavailable

log = logging.getLogger(__name__)

BUSY = "The model is busy; try again in a minute."
# The minute of BUSY, for Retry-After.
RETRY_AFTER_SECONDS = 60
# How often a waiter looks at its place: a freed slot is taken within this, and a page
# sees its new place within it.
POLL_SECONDS = 0.25
# A waiter whose place does not change still hears it this often, so nothing between the
# browser and Enclave takes the quiet stream for a dead one.
REPEAT_SECONDS = 10.0

# What the scripts answer for a ticket besides how many are ahead (model_queue_lua.py).
_ADMITTED, _FULL, _LOST = -1, -2, -3


class ModelBusy(ModelUnavailable):
    """The queue is full, or this request waited MODEL_QUEUE_MAX_WAIT_SECONDS: BUSY."""

    retry_after = RETRY_AFTER_SECONDS

    def __init__(self) -> None:
        super().__init__(BUSY)


@dataclass(frozen=True)
class QueueState:
    waiting: int
    busy: int  # slots held
    slots: int
    max_length: int

    @property
    def full(self) -> bool:
        """A new request would be refused: every slot held and no place left."""
        return self.busy >= self.slots and self.waiting >= self.max_length


class ModelQueue:
    """One queue in Redis: `client` and `prefix` say where, the rest how it behaves."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        slots: int,
        ttl: float,
        max_length: int,
        max_wait: float,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.slots = slots
        self.ttl = ttl
        self.max_length = max_length
        self.max_wait = max_wait
        self._join = client.register_script(lua.JOIN)
        self._poll = client.register_script(lua.POLL)
        self._hold = client.register_script(lua.HOLD)
        self._leave = client.register_script(lua.LEAVE)
        self._state = client.register_script(lua.STATE)

    def join(self, ticket: str, user_key: str) -> int | None:
        """Take a slot (None) or a place (how many are ahead); ModelBusy when full."""
        got = int(
            self._join(args=[self.prefix, self.slots, self.ttl, self.max_length, ticket, user_key])
        )
        if got == _FULL:
            raise ModelBusy()
        return None if got == _ADMITTED else got

    def poll(self, ticket: str) -> int | None:
        """None: the ticket holds a slot now; else how many are ahead of it (its deadline
        pushed on). LookupError: it is in neither, its deadline passed."""
        got = int(self._poll(args=[self.prefix, self.slots, self.ttl, ticket]))
        if got == _LOST:
            raise LookupError(ticket)
        return None if got == _ADMITTED else got

    def hold(self, ticket: str) -> bool:
        """Push the deadline of the ticket's slot, or of its place, on; False if it holds
        neither any more."""
        return bool(self._hold(args=[self.prefix, self.ttl, ticket]))

    def leave(self, ticket: str) -> None:
        self._leave(args=[self.prefix, self.slots, self.ttl, ticket])

    def state(self) -> QueueState:
        waiting, busy = self._state(args=[self.prefix])
        return QueueState(
            waiting=int(waiting), busy=int(busy), slots=self.slots, max_length=self.max_length
        )

    def turn(self, user_key: str) -> Turn:
        return Turn(self, user_key)


class Turn:
    """One request's turn at the model:

    turn.join()                 # a slot or a place at once (turn.ahead); ModelBusy if full
    ...                         # other work first (the search): a thread pushes the
                                #   deadline of the place, or of the slot, on meanwhile
    for ahead in turn.wait():   # places until the slot comes; ModelBusy once
        ...                     #   MODEL_QUEUE_MAX_WAIT_SECONDS have passed since joining
    ...call the model...
    turn.leave()                # the slot (or the place) back; at most once

    `with turn:` joins (unless joined already) and leaves, on an exception or a closed
    generator too.
    """

    def __init__(self, queue: ModelQueue, user_key: str) -> None:
        self.queue = queue
        self.user_key = user_key
        self.ticket = uuid.uuid4().hex
        self._ahead: int | None = None
        self._joined = False
        self._joined_at = 0.0
        self._queued = False  # False: Redis could not be reached; the model is not queued
        self._left = False
        self._stop = threading.Event()

    @property
    def ahead(self) -> int | None:
        """How many were ahead when it joined; None: a slot at once, or not queued."""
        return self._ahead

    @property
    def admitted(self) -> bool:
        """It held a slot when last looked at (joining, or the end of its wait)."""
        return self._queued and self._ahead is None

    def join(self) -> None:
        self._joined = True
        try:
            self._ahead = self.queue.join(self.ticket, self.user_key)
        except redis.RedisError as err:
            log.warning("model queue unavailable (%s); not queued", type(err).__name__)
            return
        except ModelBusy:
            core_metrics.model_busy(reason="full")
            raise
        self._queued = True
        self._joined_at = time.monotonic()
        self._keep()

    def __enter__(self) -> Turn:
        if not self._joined:
            self.join()
        return self

    def wait(self) -> Iterator[int]:
        """Yield how many are ahead, at once and whenever it changes (and every
        REPEAT_SECONDS), until this request holds a slot."""
        if not self._queued:
            return
        told: int | None = None
        told_at = 0.0
        while True:
            try:
                ahead = self.queue.poll(self.ticket)
            except LookupError:
                # This process stalled past the deadline and lost its place: back in line.
                ahead = self.queue.join(self.ticket, self.user_key)
            except redis.RedisError as err:
                log.warning("model queue unavailable (%s); no longer queued", type(err).__name__)
                self._queued = False
                return
            self._ahead = ahead
            if ahead is None:
                return
            now = time.monotonic()
            if now - self._joined_at >= self.queue.max_wait:
                core_metrics.model_busy(reason="waited")
                raise ModelBusy()
            if ahead != told or now - told_at >= REPEAT_SECONDS:
                told, told_at = ahead, now
                yield ahead
            time.sleep(POLL_SECONDS)

    def _keep(self) -> None:
        """Push the deadline on from a thread of its own from joining to leaving: the
        search before the wait, and the model before its first word, may each take longer
        than the deadline, and a slot may come (another's look hands it over) while this
        request is not looking."""
        interval = self.queue.ttl / 3

        def keep() -> None:
            held = True
            while not self._stop.wait(interval):
                try:
                    now_held = self.queue.hold(self.ticket)
                except redis.RedisError as err:
                    log.warning("model queue: turn not kept (%s)", type(err).__name__)
                    continue
                if held and not now_held:  # wait() joins again, and this keeps that
                    log.warning("model queue: a turn outlived its deadline")
                held = now_held

        threading.Thread(target=keep, name="model-turn", daemon=True).start()

    def leave(self) -> None:
        if self._left:
            return
        self._left = True
        self._stop.set()
        if not self._queued:
            return
        try:
            self.queue.leave(self.ticket)
        except redis.RedisError as error:
            # Its deadline frees it within MODEL_QUEUE_SLOT_TTL_SECONDS.
            log.warning("model queue: turn not given back (%s)", type(error).__name__)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.leave()


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # One client (and connection pool) per process: a connection per question would cost
    # a round trip each time. Short timeouts: a hung Redis must not hold the chat.
    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)


def local_model_queue() -> ModelQueue:
    """The queue of the local model, in the cache's Redis, from the settings."""
    cache = settings.CACHES["default"]
    location = cache["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
    return ModelQueue(
        _client(url),
        prefix=f"{cache.get('KEY_PREFIX', '')}:modelqueue:",
        slots=settings.LOCAL_LLM_SLOTS,
        ttl=settings.MODEL_QUEUE_SLOT_TTL_SECONDS,
        max_length=settings.MODEL_QUEUE_MAX_LENGTH,
        max_wait=settings.MODEL_QUEUE_MAX_WAIT_SECONDS,
    )


def local_model_turn(*, user_key: str) -> Turn:
    """A turn at the local model for one request of this user (not yet joined)."""
    return local_model_queue().turn(user_key)


def local_model_full() -> bool:
    """Whether a new request would be refused now; False when Redis cannot say."""
    try:
        return local_model_queue().state().full
    except redis.RedisError as err:
        log.warning("model queue unavailable (%s); not checked", type(err).__name__)
        return False
