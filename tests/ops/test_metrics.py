"""/metrics: who may read it, and what it says after real questions, real answers from the
llama.cpp server, real egress decisions, real Redis queues and real document rows."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import Group, User

from apps.ops import metrics as ops_metrics
from apps.retrieval.store import get_store, reset_store
from apps.routing.model_queue import ModelBusy, local_model_turn
from tests.support.llm import free_port
from tests.support.model_queue import model_queue_taken

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"


def _value(name: str, **labels: str) -> float:
    return ops_metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _scrape(client, **extra) -> str:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def _sample(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{{{labels}}} not in:\n{text}"
    return float(found.group(1))


# --- protection ---------------------------------------------------------------------------


def test_metrics_answer_the_allowed_addresses_only(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.20.0.0/16", "192.0.2.7"]
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.8").status_code == 403


def test_metrics_answer_a_bearer_token_from_anywhere_and_refuse_a_wrong_one(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}", "REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **auth).status_code == 200
    wrong = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x", "REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **wrong).status_code == 403
    assert client.get("/metrics").status_code == 403  # no token, no allowed address
    assert client.post("/metrics", **auth).status_code == 405


def test_by_default_only_this_host_may_scrape(client, settings):
    assert settings.METRICS_ALLOWED_IPS == ["127.0.0.1", "::1"]
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1").status_code == 403


# --- content ------------------------------------------------------------------------------


def test_documents_by_status_are_read_from_the_database_at_scrape_time(client):
    from apps.knowledge import services
    from apps.knowledge.models import Document

    collection = services.collection_create(
        name="Metrics", actor=None, default_label="internal", groups=[]
    )
    for i, status in enumerate(["indexed", "indexed", "failed", "queued"]):
        Document.objects.create(
            collection=collection,
            title=f"d{i}",
            original_name=f"d{i}.txt",
            sha256=f"{i:064d}",
            size=1,
            label="internal",
            status=status,
        )
    text = _scrape(client)
    assert _sample(text, "enclave_documents", 'status="indexed"') == 2
    assert _sample(text, "enclave_documents", 'status="failed"') == 1
    assert _sample(text, "enclave_documents", 'status="queued"') == 1
    assert _sample(text, "enclave_documents", 'status="embedding"') == 0


def test_queue_depth_is_read_from_redis_at_scrape_time(client, enclave_env, settings):
    import redis

    client_redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    key = f"{settings.CELERY_KEY_PREFIX}ingest"
    priority_key = f"{settings.CELERY_KEY_PREFIX}default\x06\x163"
    # Earlier tests of the session may have left tasks that no worker consumed: count
    # what this test adds, not what the queue holds.
    before = _scrape(client)
    # Messages nobody consumes (no worker in this module), removed again after.
    client_redis.lpush(key, "m1", "m2", "m3")
    client_redis.lpush(priority_key, "m4")
    try:
        text = _scrape(client)
    finally:
        client_redis.lrem(key, 0, "m1")
        client_redis.lrem(key, 0, "m2")
        client_redis.lrem(key, 0, "m3")
        client_redis.lrem(priority_key, 0, "m4")

    def added(queue: str) -> float:
        label = f'queue="{queue}"'
        return _sample(text, "enclave_queue_depth", label) - _sample(
            before, "enclave_queue_depth", label
        )

    assert added("ingest") == 3
    assert added("default") == 1
    assert _sample(text, "enclave_queue_depth_up") == 1


def test_a_scrape_with_redis_down_still_answers_and_says_so(client, settings):
    from tests.support.llm import free_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    text = _scrape(client)
    assert _sample(text, "enclave_queue_depth_up") == 0


def test_the_model_queue_is_read_from_redis_at_scrape_time(client, settings):
    settings.LOCAL_LLM_SLOTS = 2
    with model_queue_taken(waiting=3):
        text = _scrape(client)
    assert _sample(text, "enclave_model_queue_waiting") == 3
    assert _sample(text, "enclave_model_slots_busy") == 2
    assert _sample(text, "enclave_model_slots") == 2
    assert _sample(text, "enclave_model_queue_up") == 1
    after = _scrape(client)
    assert _sample(after, "enclave_model_queue_waiting") == 0
    assert _sample(after, "enclave_model_slots_busy") == 0


def test_a_scrape_with_the_model_queue_unreadable_says_so(client, settings):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    text = _scrape(client)
    assert _sample(text, "enclave_model_queue_up") == 0
    assert _sample(text, "enclave_model_slots") == 1


def test_refusals_of_a_busy_model_are_counted(settings):
    settings.MODEL_QUEUE_MAX_LENGTH = 0
    before = _value("enclave_model_busy_total", reason="full")
    with model_queue_taken(), pytest.raises(ModelBusy):
        with local_model_turn(user_key="someone"):
            pass
    assert _value("enclave_model_busy_total", reason="full") == before + 1


def _user(name: str) -> User:
    from apps.core.roles import EMPLOYEE

    user = User.objects.create_user(name, password=f"pw-{name}-1")
    user.groups.add(Group.objects.get_or_create(name=EMPLOYEE)[0])
    return user


def test_questions_are_counted(client, enclave_env):
    from apps.assistant import services

    user = _user("quentin")
    conversation = services.conversation_create(user=user)
    before = _value("enclave_questions_total")
    # No readable collection: answered without a model, but asked all the same.
    list(services.ask(user=user, conversation=conversation, question="Where is the badge office?"))
    assert _value("enclave_questions_total") == before + 1
    assert _sample(_scrape(client), "enclave_questions_total") == before + 1


def test_a_local_answer_records_latency_and_time_to_first_token(client, live_llm, settings):
    from apps.assistant import services
    from apps.assistant.models import Message

    settings.LOCAL_LLM_BASE_URL = live_llm["base_url"]
    user = _user("lena")
    conversation = services.conversation_create(user=user)
    asked = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content="How long is the battery?"
    )
    passage = {
        "chunk_id": str(uuid.uuid4()),
        "document_id": 1,
        "collection_id": 1,
        "title": "Pathfinder",
        "section": "Battery",
        "text": "The Pathfinder battery lasts nine hours on a single charge.",
        "page": 1,
        "char_start": 0,
        "char_end": 58,
        "label": "internal",
        "score": 0.9,
    }
    answers = _value("enclave_answer_seconds_count", where="local", outcome="ok")
    firsts = _value("enclave_answer_first_token_seconds_count", where="local")
    from apps.assistant import evidence
    from apps.retrieval.embeddings import embed_query

    found = evidence.gather(asked.content, embed_query(asked.content), [passage])
    events = list(
        services._answer_locally(
            user,
            conversation,
            asked,
            asked.content,
            [passage],
            found,
            local_model_turn(user_key=str(user.pk)),  # joined when its wait begins
        )
    )
    assert any(e.kind == "token" for e in events)
    assert _value("enclave_answer_seconds_count", where="local", outcome="ok") == answers + 1
    assert _value("enclave_answer_first_token_seconds_count", where="local") == firsts + 1
    text = _scrape(client)
    assert 'enclave_answer_seconds_bucket{le="+Inf",outcome="ok",where="local"}' in text
    assert "enclave_answer_first_token_seconds_sum" in text


def test_egress_decisions_are_counted_by_outcome_and_reason(client, settings):
    from apps.assistant import services
    from apps.routing import gate

    settings.EXTERNAL_LLM_KIND = ""
    user = _user("egon")
    conversation = services.conversation_create(user=user)
    policy = gate.current_policy()
    request = gate.prepare(
        question="My card is 4111 1111 1111 1111, what is the refund policy?",
        passages=[],
        history=[],
        policy=policy,
        provider=None,
    )
    before = _value("enclave_egress_decisions_total", outcome="denied", reason="no_provider")
    pii = _value("enclave_egress_decisions_total", outcome="denied", reason="pii")
    decision = gate.decide(
        user=user, conversation=conversation, request=request, provider=None, policy=policy
    )
    assert not decision.allowed
    codes = {r.code for r in decision.reasons}
    assert {"no_provider", "pii"} <= codes
    after = _value("enclave_egress_decisions_total", outcome="denied", reason="no_provider")
    assert after == before + 1
    assert _value("enclave_egress_decisions_total", outcome="denied", reason="pii") == pii + 1
    text = _scrape(client)
    assert (
        _sample(text, "enclave_egress_decisions_total", 'outcome="denied",reason="no_provider"')
        == after
    )


def test_the_vector_index_is_read_from_its_owner_at_scrape_time(
    client, live_vectorstore, settings, tmp_path
):
    text = _scrape(client)
    assert _sample(text, "enclave_vector_index_up") == 1
    assert _sample(text, "enclave_vector_points") == get_store().index_state()["points"]
    assert _sample(text, "enclave_vector_graphs_building") == 0
    settings.VECTOR_SOCKET = tmp_path / "nobody-listens.sock"
    reset_store()
    try:
        assert _sample(_scrape(client), "enclave_vector_index_up") == 0
    finally:
        reset_store()  # the next get_store() follows the settings restored after the test
