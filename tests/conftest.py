"""Shared fixtures: real processes (vector store owner, Celery worker) around the test DB."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

# The audit table refuses TRUNCATE; let the test flush through (see the module).
from tests.support.audit import allow_audit_flush  # noqa: F401

TEST_BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session", autouse=True)
def enclave_var(tmp_path_factory) -> Path:
    """Every test session writes under its own folder, never the project's var/: set
    before any test stores a file, because the file storage keeps the first MEDIA_ROOT
    it sees."""
    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    var = tmp_path_factory.mktemp("var")
    settings.VAR_DIR = var
    settings.MEDIA_ROOT = var / "media"
    settings.VECTOR_DATA_DIR = var / "vectors"
    settings.VECTOR_SOCKET = var / "vs.sock"
    settings.EMBEDDERS_DIR = var / "embedders"  # adapted embedder versions
    default_storage._wrapped = empty  # re-read MEDIA_ROOT on next use
    return var


@pytest.fixture(autouse=True)
def audit_seal_store(enclave_var) -> Iterator[Path]:
    """Each test seals into a store of its own (README "Compliance"): a seal left by an
    earlier test would vouch for events the rolled-back database no longer has. The seal
    key (VAR_DIR/audit/seal.key, made on first use) is one per session."""
    from django.conf import settings

    store = enclave_var / "audit" / f"seals-{uuid.uuid4().hex[:12]}.jsonl"
    saved = settings.AUDIT_SEAL_PATH, settings.SIEM_FEED_CURSOR
    settings.AUDIT_SEAL_PATH = str(store)
    settings.SIEM_FEED_CURSOR = str(store.with_suffix(".siem-cursor"))
    yield store
    settings.AUDIT_SEAL_PATH, settings.SIEM_FEED_CURSOR = saved


@pytest.fixture(scope="session", autouse=True)
def enclave_cache() -> str:
    """Rate-limit counters (Django's cache) in the test Redis database, under this session's
    own prefix: another test session on this machine must not count our sign-ins."""
    from django.conf import settings
    from django.test.signals import setting_changed

    prefix = f"enclave-test-{uuid.uuid4().hex[:12]}-cache"
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": TEST_BROKER, "KEY_PREFIX": prefix}
    }
    # Drops the cache connections made from the old settings, as override_settings does.
    setting_changed.send(sender=None, setting="CACHES", value=settings.CACHES, enter=True)
    return prefix


@pytest.fixture(scope="session", autouse=True)
def enclave_broker() -> str:
    """Every task this session sends goes to the test Redis database under this session's
    own key prefix, from the first test on: a test that uploads without asking for
    `enclave_env` must not feed the queue of a `make run` on this machine."""
    import redis
    from django.conf import settings

    from workers.celery import app

    settings.CELERY_BROKER_URL = TEST_BROKER
    app.conf.broker_url = TEST_BROKER
    # Keys of this session only: another test session on this machine shares the database.
    prefix = f"enclave-test-{uuid.uuid4().hex[:12]}:"
    settings.CELERY_KEY_PREFIX = prefix
    app.conf.broker_transport_options = {
        **(app.conf.broker_transport_options or {}),
        "global_keyprefix": prefix,
    }
    app._after_fork()  # no pooled connection to the default broker survives
    client = redis.Redis.from_url(TEST_BROKER)
    for key in client.scan_iter("enclave-test-*"):
        if client.ttl(key) == -1:
            client.expire(key, 3600)  # an old session's leftovers go away within the hour
    return prefix


@pytest.fixture(scope="session")
def enclave_env(django_db_setup, django_db_blocker, enclave_var, enclave_broker) -> dict[str, str]:
    """Point this process and every child process at the same test database, media
    folder, vector store socket and Redis database, away from a running `make run`."""
    from django.conf import settings
    from django.db import connection

    var = enclave_var
    prefix = enclave_broker
    db = connection.settings_dict
    db_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "VAR_DIR": str(var),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "VECTOR_DATA_DIR": str(settings.VECTOR_DATA_DIR),
        "VECTOR_SOCKET": str(settings.VECTOR_SOCKET),
        "CELERY_BROKER_URL": TEST_BROKER,
        "CELERY_KEY_PREFIX": prefix,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def live_vectorstore(enclave_env) -> Iterator[object]:
    """The real `manage.py vectorstore` owner process, for the whole session."""
    from django.conf import settings

    from apps.retrieval.store import reset_store
    from tests.support.vectorstore import start_vectorstore, stop_vectorstore

    proc = start_vectorstore(settings.VECTOR_DATA_DIR, settings.VECTOR_SOCKET, env=enclave_env)
    reset_store()
    holder = {"proc": proc}
    yield holder
    stop_vectorstore(holder["proc"])
    reset_store()


@pytest.fixture(scope="module")
def live_worker(enclave_env, live_vectorstore, tmp_path_factory) -> Iterator[object]:
    """A real Celery worker consuming the test broker, one per test module."""
    from tests.support.worker import kill_worker, start_worker

    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = start_worker(env=enclave_env, log=log)
    yield proc
    kill_worker(proc)


def wait_for_documents(
    ids: Iterable[int], *, statuses: Iterable[str] = ("indexed", "failed"), timeout: float = 180
) -> dict[int, object]:
    """Poll the database until every document reaches one of `statuses`."""
    from apps.knowledge.models import Document

    wanted = list(ids)
    final = set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        docs = {d.pk: d for d in Document.objects.filter(pk__in=wanted)}
        if len(docs) == len(wanted) and all(d.status in final for d in docs.values()):
            return docs
        if time.monotonic() > deadline:
            state = {pk: (d.status, d.failure_reason) for pk, d in docs.items()}
            raise AssertionError(f"documents did not finish in {timeout} s: {state}")
        time.sleep(0.25)


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def live_llm(enclave_env, tmp_path_factory) -> Iterator[dict]:
    """The real llama.cpp server with the packaged SmolLM2 model, for the whole session.

    A dict: {"proc", "port", "base_url"}; a test that kills the server restarts it with
    `restart_llm(holder)` before it ends, so later tests find it up.
    """
    from django.conf import settings

    from tests.support.llm import free_port, start_llm_server, stop_llm_server

    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "llm.log"
    proc = start_llm_server(port=port, log=log, env=enclave_env)
    base_url = f"http://127.0.0.1:{port}/v1"
    saved = settings.LOCAL_LLM_BASE_URL
    settings.LOCAL_LLM_BASE_URL = base_url
    holder = {"proc": proc, "port": port, "base_url": base_url, "log": log}
    yield holder
    settings.LOCAL_LLM_BASE_URL = saved
    stop_llm_server(holder["proc"])


def restart_llm(holder: dict) -> None:
    from tests.support.llm import start_llm_server

    holder["proc"] = start_llm_server(port=holder["port"], log=holder["log"])
