"""A live gunicorn for SCIM over HTTP, and an identity provider's client for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from apps.scim.auth import scim_token_create
from tests.support.live_web import LiveWeb, start_web, stop_web

SCIM_JSON = "application/scim+json"


@pytest.fixture(scope="module")
def scim_web(enclave_env, tmp_path_factory) -> Iterator[LiveWeb]:
    pytest.importorskip("gunicorn", reason="gunicorn comes with the prod extra")
    log = tmp_path_factory.mktemp("scim") / "web.log"
    server = start_web("gunicorn", env=dict(enclave_env), log=log)
    yield server
    stop_web(server)


class IdP:
    """What an identity provider does: JSON over HTTP with its bearer token."""

    def __init__(self, web: LiveWeb, secret: str) -> None:
        self.http = httpx.Client(
            base_url=f"{web.url}/scim/v2",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": SCIM_JSON},
            timeout=30,
        )

    def call(self, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        return self.http.request(method, path, json=body, params=params or None)

    def ok(self, method: str, path: str, body: Any = None, **params: str) -> dict[str, Any]:
        response = self.call(method, path, body, **params)
        assert response.status_code in (200, 201, 204), response.text
        return response.json() if response.status_code != 204 else {}


@pytest.fixture
def idp(scim_web) -> Iterator[IdP]:
    created = scim_token_create(name="okta")
    client = IdP(scim_web, created.secret)
    yield client
    client.http.close()


def patch_op(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(ops)}
