"""Attack: malformed values in every URL parameter, query string and form field (issue 15,
item 7), over real HTTP to gunicorn with the shipped config, as every role.

The URL patterns come from the resolver, so a new URL with a parameter is fuzzed without
a change here. An id that matches its converter but names nothing, or a value that does
not match it at all, must get a clear answer (400, 403, 404, 405, or a redirect to sign
in), never a 500; a free-text parameter may also get its page (200).
"""

from __future__ import annotations

import http.client
import re
import secrets
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, get_resolver
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RegexPattern, RoutePattern

from apps.compliance.forms import EventFilterForm
from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE, KNOWLEDGE_ADMIN
from apps.routing.forms import PolicyForm, ProviderAccessForm
from tests.accounts.conftest import make_user
from tests.accounts.test_role_matrix import _walk
from tests.support.live_web import LiveWeb, start_web, stop_web

pytestmark = pytest.mark.django_db(transaction=True)

CLEAR = {302, 400, 403, 404, 405}
# Counted as a server error: an answer whose stream broke off (the error came after 200).
CUT_OFF = 599

# Each in the form it takes in a URL path (percent-encoded where it must be).
NUMBERS = ["0", "000000000987654321", str(2**31), str(2**63), str(2**64), "9" * 50]
UUIDS = [str(uuid.UUID(int=0)), "ffffffff-ffff-ffff-ffff-ffffffffffff", str(uuid.uuid4())]
MALFORMED = [
    "abc",  # not a number
    "-1",
    "1.5",
    "%C2%B2",  # "²": str.isdigit() says yes, int() says no
    "not-a-uuid",
    "00000000-0000-0000-0000-00000000000g",
    "%C3%A9t%C3%A9%E2%80%AE%F0%9F%92%A5",  # unicode, a right-to-left override, an emoji
    "%FF%FE",  # not UTF-8
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "..",
    "'%22%3C%3E%25",
    "x" * 2000,
    "",  # empty
]
# Query-string and form values (decoded; urlencode encodes them).
FIELD_VALUES = [
    "not-a-uuid",
    "²",
    str(2**64),
    "9" * 50,
    "-1",
    "\x00",
    "été\u202e💥",
    "../../etc/passwd",
    "x" * 3000,
]


def _field_names() -> list[str]:
    """Every query or form field a view reads: those named in the views' code, and the
    forms' fields."""
    names = {"collection", "conversation", "question", "label", "value", "form", "before"}
    names |= {"after", "page", "q", "next"}
    for form in (EventFilterForm, PolicyForm, ProviderAccessForm):
        names |= set(form.base_fields)
    return sorted(names)


@dataclass(frozen=True)
class Target:
    name: str
    route: str
    params: dict[str, Any]  # name -> converter, or a regex string for a RegexPattern group


def _targets() -> list[Target]:
    found = []
    for name, route, pattern in _walk(get_resolver().url_patterns):
        found.append(Target(name, route, _params(pattern)))
    return found


def _params(pattern: URLPattern) -> dict[str, Any]:
    if isinstance(pattern.pattern, RoutePattern):
        return dict(pattern.pattern.converters)
    assert isinstance(pattern.pattern, RegexPattern)
    return {g: "regex" for g in pattern.pattern.regex.groupindex}


_ROUTE_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^()]*\)")


def _path(target: Target, values: dict[str, str]) -> str:
    if "regex" in target.params.values():
        route = _REGEX_GROUP.sub(lambda m: values[m["name"]], target.route)
        return "/" + route.replace("^", "").replace("$", "")
    return "/" + _ROUTE_PARAM.sub(lambda m: values[m["name"]], target.route)


def _values_for(converter: Any) -> list[str]:
    if isinstance(converter, IntConverter):
        return NUMBERS + MALFORMED
    if isinstance(converter, UUIDConverter):
        return UUIDS + MALFORMED
    return NUMBERS[-2:] + UUIDS[:1] + MALFORMED


def _neutral(converter: Any) -> str:
    """A value that matches the converter and names nothing."""
    if isinstance(converter, UUIDConverter):
        return str(uuid.uuid4())
    return "987654321"


@pytest.fixture(scope="module")
def web(enclave_env, tmp_path_factory) -> Iterator[LiveWeb]:
    pytest.importorskip("gunicorn", reason="gunicorn comes with the prod extra")
    env = {
        **enclave_env,
        "DEBUG": "false",
        # This test signs in badly and asks often, on purpose: its counters are its own.
        "CACHE_KEY_PREFIX": f"enclave-test-{secrets.token_hex(6)}",
        "LOGIN_FAILURE_LIMIT": "100000",
        "QUESTION_RATE_PER_MINUTE": "100000",
        # An ask that gets through must not wait on a model server.
        "LOCAL_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "LOCAL_LLM_CONNECT_TIMEOUT": "0.5",
    }
    server = start_web("gunicorn", env=env, log=tmp_path_factory.mktemp("fuzz") / "web.log")
    yield server
    stop_web(server)


class Caller:
    """One role's keep-alive connection, with its session and a CSRF token of its own."""

    def __init__(self, web: LiveWeb, role: str, user: User | None) -> None:
        self.web = web
        self.role = role
        self.token = secrets.token_hex(16)
        self.cookies = f"csrftoken={self.token}"
        if user is not None:
            client = Client()
            client.force_login(user)
            self.cookies += f"; sessionid={client.cookies['sessionid'].value}"
        self.conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)

    def request(self, method: str, path: str, body: bytes = b"") -> int:
        headers = {"Cookie": self.cookies, "X-CSRFToken": self.token}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body or None, headers=headers)
                response = self.conn.getresponse()
                try:
                    response.read()
                except http.client.IncompleteRead:
                    self.conn.close()
                    return CUT_OFF
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                return response.status
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # the server closed a keep-alive connection: once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture
def callers(web) -> Iterator[list[Caller]]:
    people = {
        "anonymous": None,
        "employee": make_user("erin", EMPLOYEE),
        "knowledge_admin": make_user("adam", KNOWLEDGE_ADMIN),
        "officer": make_user("olivia", COMPLIANCE_OFFICER),
        # Django admin's own pages let staff in; none of our roles is.
        "superuser": User.objects.create_superuser("root", "root@example.com", "pw-root-1"),
    }
    made = [Caller(web, role, user) for role, user in people.items()]
    yield made
    for caller in made:
        caller.conn.close()


def _methods(target: Target) -> list[str]:
    # Signing out would end the caller's session for the requests after it.
    return ["GET"] if target.name in ("logout", "admin:logout") else ["GET", "POST"]


def _callers_for(target: Target, callers: list[Caller]) -> list[Caller]:
    """Django admin sends every non-staff caller to its sign-in before any view runs: the
    superuser (and anonymous, for that check itself) are the ones its parameters reach."""
    if target.name.startswith("admin:"):
        return [c for c in callers if c.role in ("anonymous", "superuser")]
    return callers


def _failure(web: LiveWeb, failures: list[str]) -> str:
    return "\n".join(failures[:40]) + "\n--- server log ---\n" + web.log.read_text()[-4000:]


def test_malformed_path_parameters_get_a_clear_answer_from_every_url(web, callers):
    failures: list[str] = []
    requests = 0
    targets = [t for t in _targets() if t.params]
    assert len(targets) >= 10, "the resolver lists the parameterised URLs"
    for target in targets:
        for param, converter in target.params.items():
            for value in _values_for(converter):
                values = {p: _neutral(c) for p, c in target.params.items()} | {param: value}
                path = _path(target, values)
                for caller in _callers_for(target, callers):
                    for method in _methods(target):
                        status = caller.request(method, path)
                        requests += 1
                        strict = isinstance(converter, IntConverter | UUIDConverter)
                        if status >= 500 or (strict and status not in CLEAR):
                            failures.append(f"{method} {path[:120]} as {caller.role}: {status}")
    assert not failures, _failure(web, failures)
    assert requests > 1000  # the resolver's URLs, not a list that could go stale


def test_malformed_query_and_form_fields_never_get_a_500(web, callers):
    failures: list[str] = []
    names = _field_names()
    for target in _targets():
        if target.name.startswith("admin:") or target.name in ("healthz", "readyz", "metrics"):
            continue  # Django's own pages, and probes that read no field
        path = _path(target, {p: _neutral(c) for p, c in target.params.items()})
        for value in FIELD_VALUES:
            query = urllib.parse.urlencode({n: value for n in names})
            for caller in callers:
                for method in _methods(target):
                    if method == "GET":
                        status = caller.request("GET", f"{path}?{query}")
                    else:
                        status = caller.request("POST", path, body=query.encode())
                    if status >= 500:
                        failures.append(f"{method} {path} {value[:20]!r} as {caller.role}")
    assert not failures, _failure(web, failures)


# One field at a time too: a form that fails on one field may hide how a view reads another.
# The values that broke views (int("²"), NUL in PostgreSQL text, past a bigint).
ONE_FIELD_VALUES = ["²", "\x00", "9" * 30]


def test_each_field_alone_with_a_malformed_value_never_gets_a_500(web, callers):
    failures: list[str] = []
    names = _field_names()
    for target in _targets():
        if target.name.startswith("admin:") or target.name in ("healthz", "readyz", "metrics"):
            continue
        path = _path(target, {p: _neutral(c) for p, c in target.params.items()})
        for caller in callers:
            for method in _methods(target):
                if caller.request(method, path) in (302, 403, 405):
                    continue  # not let in: no field of it reaches the view
                for name in names:
                    for value in ONE_FIELD_VALUES:
                        query = urllib.parse.urlencode({name: value})
                        if method == "GET":
                            status = caller.request("GET", f"{path}?{query}")
                        else:
                            status = caller.request("POST", path, body=query.encode())
                        if status >= 500:
                            failures.append(f"{method} {path} {name}={value!r} as {caller.role}")
    assert not failures, _failure(web, failures)


@pytest.mark.parametrize("value", ["not-a-uuid", "12345", "%00", "é", "x" * 300, "../../x"])
def test_asking_in_a_conversation_with_a_malformed_id_is_404(web, callers, value):
    employee = next(c for c in callers if c.role == "employee")
    body = urllib.parse.urlencode({"question": "How many days of leave?", "conversation": value})
    assert employee.request("POST", "/chat/ask/", body=body.encode()) == 404
