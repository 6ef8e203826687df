"""Every URL of the project × every role → the status the table below says.

The URLs come from the resolver, not from a list: a new page without a row in EXPECTED
fails this test, and so does a row whose page no longer exists. Path parameters are
filled with real objects (tests/accounts/conftest.py: a collection the employee reads,
its documents, the employee's conversation and cited answer, an audit event).

Cell values: an HTTP status, or
  LOGIN     302 to the sign-in page (anonymous visitors; also where sign-out lands)
  ELSEWHERE 302 somewhere other than the sign-in page (home sends each role to its page)
  ADMIN     302 to the Django admin's own sign-in page (none of our roles is staff)
  {a, b}    any of these statuses
Columns: anonymous, employee, knowledge admin, compliance officer.

The bodies sent are empty, so a role that is let in gets a 400 or a form error where the
view validates: the point is who is let in, not what the view does with good input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.accounts.conftest import ROLES

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enclave_env")]

LOGIN, ELSEWHERE, ADMIN = "LOGIN", "ELSEWHERE", "ADMIN"
READY = frozenset({200, 503})  # a set: any of these statuses

#                                      anonymous  employee   k. admin   officer
EXPECTED: dict[str, dict[str, tuple[Any, Any, Any, Any]]] = {
    "home": {"GET": (LOGIN, ELSEWHERE, ELSEWHERE, ELSEWHERE),
             "POST": (LOGIN, ELSEWHERE, ELSEWHERE, ELSEWHERE)},
    "login": {"GET": (200, 200, 200, 200), "POST": (200, 200, 200, 200)},
    "logout": {"GET": (405, 405, 405, 405), "POST": (LOGIN, LOGIN, LOGIN, LOGIN)},
    # --- chat: employees and knowledge admins (both may ask); only the owner sees a
    # conversation, so the admin gets 404 on the employee's.
    "assistant:chat": {"GET": (LOGIN, 200, 200, 403), "POST": (LOGIN, 405, 405, 403)},
    "assistant:ask": {"GET": (LOGIN, 405, 405, 403), "POST": (LOGIN, 400, 400, 403)},
    "assistant:conversation": {"GET": (LOGIN, 200, 404, 403),
                               "POST": (LOGIN, 405, 405, 403)},
    "assistant:passage": {"GET": (LOGIN, 200, 404, 403), "POST": (LOGIN, 405, 405, 403)},
    "assistant:feedback": {"GET": (LOGIN, 405, 405, 403), "POST": (LOGIN, 400, 404, 403)},
    "assistant:escalate": {"GET": (LOGIN, 405, 405, 403), "POST": (LOGIN, 200, 404, 403)},
    # --- knowledge: admins only; the original's download also for readers of its collection
    "knowledge:upload": {"GET": (LOGIN, 403, 200, 403), "POST": (LOGIN, 403, 405, 403)},
    "knowledge:upload_files": {"GET": (LOGIN, 403, 405, 403), "POST": (LOGIN, 403, 400, 403)},
    "knowledge:status": {"GET": (LOGIN, 403, 200, 403), "POST": (LOGIN, 403, 405, 403)},
    "knowledge:collections": {"GET": (LOGIN, 403, 200, 403), "POST": (LOGIN, 403, 400, 403)},
    "knowledge:collection_edit": {"GET": (LOGIN, 403, 200, 403),
                                  "POST": (LOGIN, 403, 400, 403)},
    "knowledge:document_label": {"GET": (LOGIN, 403, 405, 403),
                                 "POST": (LOGIN, 403, ELSEWHERE, 403)},
    "knowledge:document_reingest": {"GET": (LOGIN, 403, 405, 403),
                                    "POST": (LOGIN, 403, ELSEWHERE, 403)},
    "knowledge:document_delete": {"GET": (LOGIN, 403, 405, 403),
                                  "POST": (LOGIN, 403, ELSEWHERE, 403)},
    "knowledge:document_download": {"GET": (LOGIN, 200, 200, 403),
                                    "POST": (LOGIN, 405, 405, 405)},
    "knowledge:document_versions": {"GET": (LOGIN, 403, 200, 403),
                                    "POST": (LOGIN, 403, 405, 403)},
    # Embedder versions: the actions are tried on a version nobody has (404 once let in),
    # so the matrix starts no re-index and drops nothing.
    "knowledge:embedders": {"GET": (LOGIN, 403, 200, 403), "POST": (LOGIN, 403, 405, 403)},
    "knowledge:embedder_reindex": {"GET": (LOGIN, 403, 405, 403),
                                   "POST": (LOGIN, 403, 404, 403)},
    "knowledge:embedder_activate": {"GET": (LOGIN, 403, 405, 403),
                                    "POST": (LOGIN, 403, 404, 403)},
    "knowledge:embedder_drop": {"GET": (LOGIN, 403, 405, 403),
                                "POST": (LOGIN, 403, 404, 403)},
    # Sources: a real one for its page; "Sync now" on one nobody has (nothing is queued).
    "knowledge:sources": {"GET": (LOGIN, 403, 200, 403), "POST": (LOGIN, 403, 400, 403)},
    "knowledge:source_detail": {"GET": (LOGIN, 403, 200, 403),
                                "POST": (LOGIN, 403, 405, 403)},
    "knowledge:source_sync": {"GET": (LOGIN, 403, 405, 403), "POST": (LOGIN, 403, 404, 403)},
    # --- egress policy: knowledge admins
    "routing:policy": {"GET": (LOGIN, 403, 200, 403), "POST": (LOGIN, 403, 200, 403)},
    # --- compliance console: officers only (require_GET comes first there: 405 for all)
    "audit:events": {"GET": (LOGIN, 403, 403, 200), "POST": (405, 405, 405, 405)},
    "audit:event": {"GET": (LOGIN, 403, 403, 200), "POST": (405, 405, 405, 405)},
    "audit:event_provenance": {"GET": (LOGIN, 403, 403, ELSEWHERE),
                               "POST": (405, 405, 405, 405)},
    "audit:provenance": {"GET": (LOGIN, 403, 403, 200), "POST": (405, 405, 405, 405)},
    "audit:export_csv": {"GET": (LOGIN, 403, 403, 200), "POST": (405, 405, 405, 405)},
    "audit:export_json": {"GET": (LOGIN, 403, 403, 200), "POST": (405, 405, 405, 405)},
    "audit:verify": {"GET": (LOGIN, 403, 403, 200), "POST": (LOGIN, 403, 403, 200)},
    "audit:models": {"GET": (LOGIN, 403, 403, 200), "POST": (405, 405, 405, 405)},
    # The egress report and the erasure page take GET and POST (the form's steps); an
    # empty form is a 400 for the officer.
    "audit:egress_report": {"GET": (LOGIN, 403, 403, 200), "POST": (LOGIN, 403, 403, 400)},
    "audit:erase": {"GET": (LOGIN, 403, 403, 200), "POST": (LOGIN, 403, 403, 400)},
    # --- API (apps/api): a bearer token, never the session, so every role is 401 without
    # one; the tokens page is for those who may ask.
    "api:chat_completions": {"GET": (405, 405, 405, 405), "POST": (401, 401, 401, 401)},
    "api:models": {"GET": (401, 401, 401, 401), "POST": (405, 405, 405, 405)},
    "api:tokens": {"GET": (LOGIN, 200, 200, 403), "POST": (LOGIN, 400, 400, 403)},
    "api:revoke": {"GET": (LOGIN, 405, 405, 403), "POST": (LOGIN, 404, 404, 403)},
    # --- SCIM (apps/scim): the identity provider's bearer token only.
    "scim:users": {"GET": (401, 401, 401, 401), "POST": (401, 401, 401, 401)},
    "scim:user": {"GET": (401, 401, 401, 401), "POST": (405, 405, 405, 405)},
    "scim:groups": {"GET": (401, 401, 401, 401), "POST": (401, 401, 401, 401)},
    "scim:group": {"GET": (401, 401, 401, 401), "POST": (405, 405, 405, 405)},
    "scim:config": {"GET": (401, 401, 401, 401), "POST": (405, 405, 405, 405)},
    # --- probes and Prometheus (apps/ops): no sign-in. /readyz is 503 while a part it
    # checks is down (no vector store runs here), so either answer is right. /metrics is
    # open to METRICS_ALLOWED_IPS (127.0.0.1 by default, the test client's address).
    "healthz": {"GET": (200, 200, 200, 200), "POST": (405, 405, 405, 405)},
    "readyz": {"GET": (READY,) * 4, "POST": (405, 405, 405, 405)},
    "metrics": {"GET": (200, 200, 200, 200), "POST": (405, 405, 405, 405)},
    # --- Django admin: only its entry points are in the table (see _admin_internal).
    "admin:index": {"GET": (ADMIN, ADMIN, ADMIN, ADMIN), "POST": (ADMIN, ADMIN, ADMIN, ADMIN)},
    "admin:login": {"GET": (200, 200, 200, 200), "POST": (200, 200, 200, 200)},
}  # fmt: skip

# Every other Django admin page is AdminSite.admin_view-wrapped: is_staff is checked before
# the view runs, for every model admin, so the table would only restate Django. Those
# without path parameters are still requested below (each must send our non-staff roles
# back into the admin's sign-in); those with parameters (object ids, app labels, the
# catch-all) would need an instance of every registered model and test Django, not Enclave.
ADMIN_ENTRY_POINTS = {"admin:index", "admin:login"}


def _walk(patterns: list[Any], prefix: str = "", ns: str = "") -> Iterator[tuple[str, str, Any]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            inner = f"{ns}:{p.namespace}" if ns and p.namespace else (p.namespace or ns)
            yield from _walk(p.url_patterns, prefix + str(p.pattern), inner)
        elif isinstance(p, URLPattern):
            # A nameless pattern inside a namespace keeps the namespace ("admin:").
            name = f"{ns}:{p.name or ''}" if ns else (p.name or "")
            yield name, prefix + str(p.pattern), p


def _params(route: str, pattern: URLPattern) -> set[str]:
    from django.urls.resolvers import RegexPattern, RoutePattern

    if isinstance(pattern.pattern, RoutePattern):
        return set(pattern.pattern.converters)
    assert isinstance(pattern.pattern, RegexPattern)
    return set(pattern.pattern.regex.groupindex)


def project_urls() -> list[tuple[str, str, set[str]]]:
    return [(n, r, _params(r, p)) for n, r, p in _walk(get_resolver().url_patterns)]


def _admin_internal(name: str) -> bool:
    return name.startswith("admin:") and name not in ADMIN_ENTRY_POINTS


def _kwargs(world: Any, name: str, params: set[str]) -> dict[str, Any]:
    values = {
        "conversation_id": world.conversation.pk,
        "message_id": world.answer.pk,
        "n": 1,
        "collection_id": world.collection.pk,
        # Deleting is tried on a document of its own, so the others stay for later rows.
        "document_id": world.doomed.pk
        if name == "knowledge:document_delete"
        else world.document.pk,
        "event_id": world.event.pk,
        # A token nobody has (revoking one is tests/api's), and SCIM ids (401 before use).
        "token_id": 999_999,
        "version_id": 999_999,
        "source_id": world.source.pk if name == "knowledge:source_detail" else 999_999,
        "user_id": "1",
        "group_id": "1",
    }
    missing = params - set(values)
    assert not missing, f"{name}: no test object for path parameter(s) {missing}; add one"
    return {p: values[p] for p in params}


def _check(response: Any, want: Any, where: str) -> None:
    location = response.get("Location", "")
    if want == LOGIN:
        assert response.status_code == 302 and location.startswith(reverse("login")), where
    elif want == ADMIN:
        assert response.status_code == 302, where
        assert location.startswith(reverse("admin:login")), where
    elif want == ELSEWHERE:
        assert response.status_code == 302, where
        assert not location.startswith(reverse("login")), where
    elif isinstance(want, frozenset):
        assert response.status_code in want, where
    else:
        assert response.status_code == want, where


def _client_for(role: str, world: Any) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world.users[role])
    return client


def test_every_url_is_in_the_table_and_every_row_is_a_url():
    names = [name for name, _, _ in project_urls()]
    assert "" not in names, "a URL pattern without a name cannot be checked; name it"
    checked = {n for n in names if not _admin_internal(n)}
    assert checked - set(EXPECTED) == set(), "URLs missing from EXPECTED"
    assert set(EXPECTED) - checked == set(), "rows of EXPECTED without a URL"


def test_role_matrix(world):
    seen = 0
    for name, _route, params in project_urls():
        if _admin_internal(name):
            continue
        url = reverse(name, kwargs=_kwargs(world, name, params))
        for method, row in EXPECTED[name].items():
            for role, want in zip(ROLES, row, strict=True):
                # A fresh client each time: signing out (or a 302 away) must not leak into
                # the next request.
                client = _client_for(role, world)
                response = getattr(client, method.lower())(url)
                _check(response, want, f"{method} {url} ({name}) as {role}: "
                       f"got {response.status_code} {response.get('Location', '')}")  # fmt: skip
                seen += 1
    # Every row: 2 methods × 4 roles (47 URLs, 376 requests, at the time of writing).
    assert seen == len(EXPECTED) * 2 * len(ROLES)


def test_admin_internals_send_every_role_to_the_admin_sign_in(world):
    internal = [(n, r) for n, r, params in project_urls() if _admin_internal(n) and not params]
    assert len(internal) > 5  # model admins are registered: the list is not empty by accident
    for role in ROLES:
        client = _client_for(role, world)
        for name, _ in internal:
            response = client.get(reverse(name))
            # To the admin sign-in, or (sign-out) back to the admin root: never a page.
            assert response.status_code == 302, (name, role, response.status_code)
            assert response["Location"].startswith(reverse("admin:index")), (name, role)


def test_employee_cannot_read_another_employees_things(world):
    """The matrix uses the owner's objects; a second employee of the same groups gets 404
    on every one of them (ownership, not just the role, guards a conversation)."""
    from tests.accounts.conftest import make_user

    other = make_user("ed", "Employees", "Handbook readers")
    client = Client()
    client.force_login(other)
    for name in ("assistant:conversation", "assistant:passage"):
        url = reverse(name, kwargs=_kwargs(world, name, _params("", _pattern(name))))
        assert client.get(url).status_code == 404, name
    for name in ("assistant:feedback", "assistant:escalate"):
        url = reverse(name, kwargs={"message_id": world.answer.pk})
        assert client.post(url, {"value": "up"}).status_code == 404, name
    # ...but the original of a document in a collection they read is theirs to download.
    url = reverse("knowledge:document_download", args=[world.document.pk])
    assert client.get(url).status_code == 200


def _pattern(name: str) -> URLPattern:
    for n, _, p in _walk(get_resolver().url_patterns):
        if n == name:
            return p
    raise LookupError(name)
