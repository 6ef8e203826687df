"""Fixed-window counters in Django's cache (Redis): failed sign-ins, questions and
escalations to the external model.

The cache is Redis (``CACHE_URL``), shared by every web process, and ``incr`` there is
atomic, so two processes never both let the sixth attempt through. A window starts at the
first hit and lasts ``window`` seconds; the counter expires with it.

If the cache cannot be reached, the limiter lets the request through and logs it: a
Redis restart must not lock every user out of Enclave. The audit trail still records
every failed sign-in, so a burst during an outage is visible afterwards. Escalations are
the exception: their counter fails closed (see `escalation_hit`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.core.cache import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    count: int
    retry_after: int  # seconds until the window ends (0 when no window is open)


def _key(kind: str, *parts: str) -> str:
    # Hashed: usernames are free text (spaces, unicode) and must not reach Redis as keys.
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"ratelimit:{kind}:{digest}"


def _read(key: str) -> Window:
    try:
        value = cache.get_many([key, f"{key}:ends"])
    except Exception:  # the cache is down: fail open, see the module docstring
        logger.warning("rate limit cache unavailable; %s not enforced", key, exc_info=True)
        return Window(0, 0)
    count = int(value.get(key) or 0)
    ends = float(value.get(f"{key}:ends") or 0)
    return Window(count, max(0, int(ends - time.time() + 0.999)) if count else 0)


def _hit(key: str, window: int, *, fail_open: bool = True) -> Window:
    try:
        ends = time.time() + window
        # add() only creates: the first hit of a window fixes its length.
        if cache.add(key, 0, timeout=window):
            cache.set(f"{key}:ends", ends, timeout=window)
        count = cache.incr(key)
        ends = float(cache.get(f"{key}:ends") or ends)
    except ValueError:
        # The key expired between add() and incr(): this hit opens a new window.
        cache.set(key, 1, timeout=window)
        cache.set(f"{key}:ends", time.time() + window, timeout=window)
        return Window(1, window)
    except Exception:
        if not fail_open:
            raise
        logger.warning("rate limit cache unavailable; %s not counted", key, exc_info=True)
        return Window(0, 0)
    return Window(count, max(1, int(ends - time.time() + 0.999)))


def _clear(key: str) -> None:
    try:
        cache.delete_many([key, f"{key}:ends"])
    except Exception:
        logger.warning("rate limit cache unavailable; %s not cleared", key, exc_info=True)


# --- sign-in failures, per username and client address -------------------------------------


def login_key(username: str, ip: str) -> str:
    return _key("login", username.strip().casefold(), ip)


def login_failures(username: str, ip: str) -> Window:
    return _read(login_key(username, ip))


def login_failure_record(username: str, ip: str, *, window: int) -> Window:
    return _hit(login_key(username, ip), window)


def login_failures_clear(username: str, ip: str) -> None:
    _clear(login_key(username, ip))


# --- questions, per user -------------------------------------------------------------------


def question_hit(user_pk: int, *, window: int = 60) -> Window:
    """Count one question for this user; the returned count includes it."""
    return _hit(_key("question", str(user_pk)), window)


# --- escalations to the external model, per user ------------------------------------------


def escalation_hit(user_pk: int, *, window: int = 60) -> Window:
    """Count one escalation the egress gate is about to allow; the count includes it.

    Fails closed, unlike the others: the gate reads an error as "keep it local", and an
    outage of the cache must not lift the limit on what leaves the premises."""
    return _hit(_key("escalation", str(user_pk)), window, fail_open=False)


def minutes_and_seconds(seconds: int) -> str:
    minutes, rest = divmod(max(1, seconds), 60)
    if not minutes:
        return f"{rest} second{'s' if rest != 1 else ''}"
    if not rest:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes} min {rest} s"
