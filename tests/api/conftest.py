"""A live gunicorn serving the API over HTTP, with the real model server, vector store
owner and worker, and the recording stand-in as the external provider."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile

from apps.accounts.tokens import token_create
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE
from apps.knowledge import services as knowledge
from apps.routing import services as routing
from tests.conftest import TEST_BROKER, wait_for_documents
from tests.support.fake_provider import FakeProvider
from tests.support.live_web import LiveWeb, start_web, stop_web

CANARY = "CANARY-5d1e-KESTREL"
LAUNCH = (
    "# Pathfinder launch\n\n## Dates\n\nPathfinder launches publicly on 3 March. The public "
    "beta opens two weeks earlier for everyone who signs up on the website.\n"
)
# Enough public passages about Pathfinder that a question about it retrieves only them
# (RETRIEVAL_K=2 below); the confidential one shares no words with them.
MORE_PUBLIC = {
    "pricing.md": "# Pathfinder pricing\n\nPathfinder costs 900 euros a month per robot.\n",
    "support.md": "# Pathfinder support\n\nPathfinder support answers within one working day.\n",
    "beta.md": "# Pathfinder beta\n\nThe Pathfinder beta runs in Leeds before launch.\n",
}
KESTREL = (
    "# Kestrel\n\n## Budget\n\nThe Kestrel acquisition budget is 4.2 million euros, approved "
    f"by the board in the autumn. {CANARY}\n"
)


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(reply="Pathfinder launches on 3 March [1].") as fake:
        yield fake


@pytest.fixture(scope="module")
def api_web(
    enclave_env, enclave_cache, live_llm, live_vectorstore, provider, tmp_path_factory
) -> Iterator[LiveWeb]:
    pytest.importorskip("gunicorn", reason="gunicorn comes with the prod extra")
    env = {
        **enclave_env,
        "LOCAL_LLM_BASE_URL": live_llm["base_url"],
        # The test's own cache: it fills a user's question window to test the limit.
        "CACHE_URL": TEST_BROKER,
        "CACHE_KEY_PREFIX": enclave_cache,
        "EXTERNAL_LLM_KIND": "openai-compatible",
        "EXTERNAL_LLM_NAME": "fakeai",
        "EXTERNAL_LLM_BASE_URL": provider.base_url,
        "EXTERNAL_LLM_MODEL": "gpt-fake",
        "EXTERNAL_LLM_API_KEY": "sk-test-not-a-real-key",
        "EXTERNAL_LLM_TIMEOUT": "10",
        "RETRIEVAL_K": "2",
    }
    server = start_web("gunicorn", env=env, log=tmp_path_factory.mktemp("api") / "web.log")
    yield server
    stop_web(server)


@pytest.fixture
def world(provider, live_worker) -> dict:
    """Public launch notes for all staff, a confidential deal for the deal team; Eve reads
    both, Pat only the public one; each has a token. The stand-in starts empty."""
    provider.requests.clear()
    staff, deals = Group.objects.create(name="Staff"), Group.objects.create(name="Deal team")
    public = knowledge.collection_create(
        name="Launch", actor=None, default_label=Label.PUBLIC, groups=[staff]
    )
    confidential = knowledge.collection_create(
        name="Deals", actor=None, default_label=Label.CONFIDENTIAL, groups=[deals]
    )
    launch, _ = knowledge.document_create(
        collection=public, upload=ContentFile(LAUNCH.encode(), name="launch.md"), user=None
    )
    secret, _ = knowledge.document_create(
        collection=confidential,
        upload=ContentFile(KESTREL.encode(), name="kestrel.md"),
        user=None,
    )
    more = [
        knowledge.document_create(
            collection=public, upload=ContentFile(text.encode(), name=name), user=None
        )[0].pk
        for name, text in MORE_PUBLIC.items()
    ]
    docs = wait_for_documents([launch.pk, secret.pk, *more])
    assert {d.status for d in docs.values()} == {"indexed"}, [
        d.failure_reason for d in docs.values()
    ]
    routing.policy_update(actor=None, escalation_enabled=True, non_sensitive_labels=["public"])
    routing.provider_access_set(
        actor=None,
        provider="fakeai",
        groups=[staff],
        daily_token_budget=100_000,
        daily_cost_budget=Decimal("5"),
    )
    employees = Group.objects.get(name=EMPLOYEE)
    eve = User.objects.create_user("eve", password="pw-eve-12345")
    eve.groups.add(employees, staff, deals)
    pat = User.objects.create_user("pat", password="pw-pat-12345")
    pat.groups.add(employees, staff)
    return {
        "eve": eve,
        "pat": pat,
        "eve_token": token_create(user=eve, name="eve's script", days=30),
        "pat_token": token_create(user=pat, name="pat's bot", days=30),
        "launch": docs[launch.pk],
        "secret": docs[secret.pk],
    }


def client_for(web: LiveWeb, secret: str):
    """The official OpenAI client pointed at Enclave, retries off (a test sees each try)."""
    import openai

    return openai.OpenAI(base_url=f"{web.url}/v1", api_key=secret, max_retries=0, timeout=120)
