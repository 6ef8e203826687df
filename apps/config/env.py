"""Reading the environment for settings.py: typed readers that check each value as they
read it, so a wrong value stops start-up with ImproperlyConfigured naming the variable.

Messages read "NAME must be <what it must be>" (every rule goes through `require`), or
"NAME: <what is wrong with this item>" for one item of a comma-separated list.

Imported by settings before Django is set up: nothing here imports an app or a heavy
library.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import environ
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

# What a request.META name of an HTTP header looks like (Django upper-cases the header and
# prefixes HTTP_); any other name can never match a header a proxy sets.
_META_HEADER = re.compile(r"HTTP_[A-Z0-9_]+")


def require(name: str, ok: bool, want: str) -> None:
    """The one check behind every reader: `NAME must be <want>` unless `ok`."""
    if not ok:
        raise ImproperlyConfigured(f"{name} must be {want}")


class Env(environ.Env):
    """django-environ's reader, plus readers that check what they read."""

    def integer(
        self, name: str, *, default: int, low: int = 1, high: int | None = None, want: str = ""
    ) -> int:
        """An integer from `low` to `high` (no upper bound when None)."""
        value = self.int(name, default=default)
        if not want and high is not None:
            want = f"an integer from {low} to {high}"
        elif not want:
            want = "a positive integer" if low == 1 else f"an integer of at least {low}"
        require(name, low <= value and (high is None or value <= high), want)
        return value

    def number(
        self, name: str, *, default: float, low: float, high: float = math.inf, want: str
    ) -> float:
        """A number from `low` to `high`, both included."""
        value = self.float(name, default=default)
        require(name, low <= value <= high, want)
        return value

    def seconds(self, name: str, *, default: float, most: float | None = None) -> float:
        """A timeout: more than 0 seconds, and at most `most` when given."""
        value = self.float(name, default=default)
        if most is None:
            require(name, value > 0, "a positive number of seconds")
        else:
            require(name, 0 < value <= most, f"a number of seconds from 0 to {most:g}")
        return value

    def choice(self, name: str, *, default: str, choices: Sequence[str]) -> str:
        """One of `choices`; the message lists them, "" as "empty"."""
        value = self.str(name, default=default)
        said = [c or "empty" for c in choices]
        require(name, value in choices, ", ".join(said[:-1]) + " or " + said[-1])
        return value

    def http_url(self, name: str) -> str:
        """Empty, or an http:// or https:// URL."""
        value = self.str(name, default="")
        ok = not value or value.startswith(("http://", "https://"))
        require(name, ok, "empty or an http:// or https:// URL")
        return value

    def key(self, name: str, *, shortest: int, empty: str) -> str:
        """A secret: empty (`empty` says what that means) or at least `shortest` long."""
        value = self.str(name, default="")
        ok = not value or len(value) >= shortest
        require(name, ok, f"at least {shortest} characters ({empty})")
        return value

    def meta_header(self, name: str, *, example: str, also: Sequence[str] = ()) -> str:
        """Empty, one of `also`, or the request.META name of an HTTP header. Clients can
        send any header: name one only if the deployment's proxy always overwrites it."""
        value = self.str(name, default="")
        ok = not value or value in also or bool(_META_HEADER.fullmatch(value))
        require(name, ok, f"a request.META name such as {example}, not {value!r}")
        return value

    def parsed(self, name: str, parse: Callable[[list[str]], T], *, default: list[str]) -> T:
        """A comma-separated list through `parse`, whose ValueError names the bad item."""
        try:
            return parse(self.list(name, default=default))
        except ValueError as err:
            raise ImproperlyConfigured(f"{name}: {err}") from err

    def items(self, name: str, check: Callable[[str], object], *, default: list[str]) -> list[str]:
        """A comma-separated list whose every item passes `check` (a ValueError if not)."""

        def checked(items: list[str]) -> list[str]:
            for item in items:
                check(item)
            return items

        return self.parsed(name, checked, default=default)


# --- item checks for Env.items: a ValueError says what is wrong with the item -------------


def origin(value: str) -> None:
    if not re.fullmatch(r"https?://[^/\s]+", value):
        raise ValueError(f"{value!r} must be a scheme and host, e.g. https://enclave.example.com")


def pattern(value: str) -> None:
    try:
        re.compile(value)
    except re.error as err:
        raise ValueError(f"{value!r} is not a regular expression: {err}") from err


def network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IP address or network") from err


def redis_database(url: str, *, database: int, fallback: str) -> str:
    """`url` pointing at another database number, or `fallback` for a URL that is not a
    plain redis:// or rediss:// one (a socket path, a sentinel list)."""
    if not re.match(r"rediss?://[^/]+(/\d*)?$", url):
        return fallback
    return re.sub(r"(/\d*)?$", f"/{database}", url, count=1)
