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
(a waiter's polls, a thread beside a running answer), so a process that dies holds
neither a place nor a slot for longer than that. Every change runs in one Lua script,
which first drops what is past its deadline and hands free slots to the heads of the
turn order; times are the Redis server's, the same for every machine.

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

_ADMITTED, _FULL, _LOST = -1, -2, -3

# Shared by every script: P is the key prefix (ARGV[1]).
_LUA_COMMON = """
local P = ARGV[1]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function forget(t)
  local uid = redis.call('HGET', P .. 'owner', t)
  if uid then
    local mine = P .. 'user:' .. uid
    redis.call('LREM', mine, 0, t)
    if redis.call('LLEN', mine) == 0 then redis.call('LREM', P .. 'rotation', 0, uid) end
    redis.call('HDEL', P .. 'owner', t)
  end
  redis.call('ZREM', P .. 'waiting', t)
end
-- Drop what outlived its deadline, then give each free slot to the next in turn: the
-- first ticket of the user at the head of the rotation, who goes to its tail if more of
-- their tickets wait.
local function tidy(now, slots, ttl)
  redis.call('ZREMRANGEBYSCORE', P .. 'slots', '-inf', now)
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', P .. 'waiting', '-inf', now)) do
    forget(t)
  end
  while redis.call('ZCARD', P .. 'slots') < slots do
    local uid = redis.call('LPOP', P .. 'rotation')
    if not uid then break end
    local mine = P .. 'user:' .. uid
    local t = redis.call('LPOP', mine)
    if redis.call('LLEN', mine) > 0 then redis.call('RPUSH', P .. 'rotation', uid) end
    if t then
      redis.call('HDEL', P .. 'owner', t)
      redis.call('ZREM', P .. 'waiting', t)
      redis.call('ZADD', P .. 'slots', now + ttl, t)
    end
  end
end
-- Tickets served before t: for the i-th ticket (from 0) of its user, each user's first
-- i tickets, plus the (i+1)-th of each user ahead of its user in the rotation.
local function ahead(t)
  local uid = redis.call('HGET', P .. 'owner', t)
  if not uid then return nil end
  local i = redis.call('LPOS', P .. 'user:' .. uid, t)
  if not i then return nil end
  local n, before = 0, true
  for _, v in ipairs(redis.call('LRANGE', P .. 'rotation', 0, -1)) do
    if v == uid then before = false end
    local len = redis.call('LLEN', P .. 'user:' .. v)
    n = n + math.min(len, i)
    if before and len > i then n = n + 1 end
  end
  return n
end
"""

# ARGV: prefix, slots, ttl, max_length, ticket, user key → -1 admitted, -2 full, else ahead.
_JOIN = (
    _LUA_COMMON
    + """
local slots, ttl, longest = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t, uid = ARGV[5], ARGV[6]
local now = clock()
tidy(now, slots, ttl)
if redis.call('ZCARD', P .. 'slots') < slots then
  redis.call('ZADD', P .. 'slots', now + ttl, t)
  return -1
end
if redis.call('ZCARD', P .. 'waiting') >= longest then return -2 end
if redis.call('RPUSH', P .. 'user:' .. uid, t) == 1 then
  redis.call('RPUSH', P .. 'rotation', uid)
end
redis.call('HSET', P .. 'owner', t, uid)
redis.call('ZADD', P .. 'waiting', now + ttl, t)
return ahead(t)
"""
)

# ARGV: prefix, slots, ttl, ticket → -1 admitted, -3 lost (past its deadline), else ahead.
_POLL = (
    _LUA_COMMON
    + """
local slots, ttl, t = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = clock()
tidy(now, slots, ttl)
if redis.call('ZSCORE', P .. 'slots', t) then
  redis.call('ZADD', P .. 'slots', now + ttl, t)
  return -1
end
if not redis.call('ZSCORE', P .. 'waiting', t) then return -3 end
redis.call('ZADD', P .. 'waiting', now + ttl, t)
return ahead(t)
"""
)

# ARGV: prefix, ttl, ticket → 1 the slot is still held (deadline pushed on), 0 it is not.
_HOLD = (
    _LUA_COMMON
    + """
local ttl, t = tonumber(ARGV[2]), ARGV[3]
if not redis.call('ZSCORE', P .. 'slots', t) then return 0 end
redis.call('ZADD', P .. 'slots', clock() + ttl, t)
return 1
"""
)

# ARGV: prefix, slots, ttl, ticket: gives up its slot or its place; the next in turn
# gets the slot at once.
_LEAVE = (
    _LUA_COMMON
    + """
local slots, ttl, t = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREM', P .. 'slots', t)
forget(t)
tidy(clock(), slots, ttl)
return 0
"""
)

# ARGV: prefix → {waiting, slots held}, counting only what is within its deadline.
_STATE = (
    _LUA_COMMON
    + """
local now = clock()
return {redis.call('ZCOUNT', P .. 'waiting', '(' .. now, '+inf'),
        redis.call('ZCOUNT', P .. 'slots', '(' .. now, '+inf')}
"""
)


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
        self._join = client.register_script(_JOIN)
        self._poll = client.register_script(_POLL)
        self._hold = client.register_script(_HOLD)
        self._leave = client.register_script(_LEAVE)
        self._state = client.register_script(_STATE)

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
        """Push the slot's deadline on; False if the slot was no longer held."""
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
    """One request's turn at the model, as a context manager:

    with queue.turn(user_key) as turn:      # joins; ModelBusy if the queue is full
        for ahead in turn.wait():           # places while it waits; ModelBusy past
            ...                             #   MODEL_QUEUE_MAX_WAIT_SECONDS
        ...call the model...                # the slot is held, its deadline kept
    # the slot (or the place) is given back, on an exception or a closed generator too
    """

    def __init__(self, queue: ModelQueue, user_key: str) -> None:
        self.queue = queue
        self.user_key = user_key
        self.ticket = uuid.uuid4().hex
        self._ahead: int | None = None
        self._queued = False  # False: Redis could not be reached; the model is not queued
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    def __enter__(self) -> Turn:
        try:
            self._ahead = self.queue.join(self.ticket, self.user_key)
        except redis.RedisError as err:
            log.warning("model queue unavailable (%s); not queued", type(err).__name__)
            return self
        except ModelBusy:
            core_metrics.model_busy(reason="full")
            raise
        self._queued = True
        if self._ahead is None:
            self._keep()
        return self

    def wait(self) -> Iterator[int]:
        """Yield how many are ahead, at once and whenever it changes (and every
        REPEAT_SECONDS), until this request holds a slot."""
        if not self._queued or self._ahead is None:
            return
        started = last = time.monotonic()
        ahead = self._ahead
        yield ahead
        while True:
            time.sleep(POLL_SECONDS)
            try:
                now_ahead = self.queue.poll(self.ticket)
            except LookupError:
                # This process stalled past the deadline and lost its place: back in line.
                self._ahead = self.queue.join(self.ticket, self.user_key)
                now_ahead = self._ahead
            except redis.RedisError as err:
                log.warning("model queue unavailable (%s); no longer queued", type(err).__name__)
                self._queued = False
                return
            if now_ahead is None:
                self._ahead = None
                self._keep()
                return
            now = time.monotonic()
            if now - started >= self.queue.max_wait:
                core_metrics.model_busy(reason="waited")
                raise ModelBusy()
            if now_ahead != ahead or now - last >= REPEAT_SECONDS:
                ahead, last = now_ahead, now
                yield ahead

    def _keep(self) -> None:
        """Push the slot's deadline on from a thread of its own while the answer runs:
        the model may think longer than the deadline before its first word."""
        interval = self.queue.ttl / 3

        def keep() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.queue.hold(self.ticket):
                        log.warning("model queue: a slot outlived its deadline")
                        return
                except redis.RedisError as err:
                    log.warning("model queue: slot not kept (%s)", type(err).__name__)

        self._keeper = threading.Thread(target=keep, name="model-slot", daemon=True)
        self._keeper.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if not self._queued:
            return
        try:
            self.queue.leave(self.ticket)
        except redis.RedisError as error:
            # Its deadline frees it within MODEL_QUEUE_SLOT_TTL_SECONDS.
            log.warning("model queue: slot not given back (%s)", type(error).__name__)


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
