"""Redis (the Celery broker) crashes and restarts while documents wait in the queue.

Nothing is lost once it is back, by two mechanisms, one per parameter:

- ``aof``: Redis as production should run it, with its append-only file
  (``--appendonly yes``): the queued messages survive the crash and the worker, which
  reconnects by itself, consumes them.
- ``no-persistence``: Redis as it runs on this machine, keeping nothing on disk: the
  messages die with it, and the stale-ingestion reaper (Celery beat runs it every minute)
  sends every document still "queued" in the database again.

Either way, a file uploaded while Redis is down is stored, the upload answer and the
document's row on the upload page tell the admin the queue is unavailable, and the
reaper's next round sends it once Redis is back.
The test runs a redis-server of its own; the machine's shared one is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from apps.knowledge import dispatch, ingestion, reaper
from apps.knowledge.models import Document
from tests.conftest import wait_for_documents
from tests.failures import helpers
from tests.failures.redis_server import PrivateRedis
from tests.support import fixtures
from tests.support.worker import kill_worker, start_worker
from workers.celery import app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

QUEUE_DOWN = "ingestion queue is unavailable"


def _use_broker(url: str) -> None:
    django_settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    app._after_fork()  # drop pooled connections to the old broker


@pytest.fixture(params=["aof", "no-persistence"])
def private_redis(request, enclave_env, tmp_path) -> Iterator[PrivateRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(directory, appendonly=request.param == "aof")
    server.start()
    saved = django_settings.CELERY_BROKER_URL
    _use_broker(server.url)
    try:
        yield server
    finally:
        _use_broker(saved)
        server.kill()


def _upload(client, collection, paths: list[Path]) -> list[dict]:  # noqa: ANN001
    files = [p.open("rb") for p in paths]
    try:
        resp = client.post(
            reverse("knowledge:upload_files"),
            {"collection": collection.pk, "files": files},
            HTTP_ACCEPT="application/json",
        )
    finally:
        for f in files:
            f.close()
    assert resp.status_code == 200, resp.content
    return resp.json()["results"]


def _chunks(path: Path) -> int:
    return len(ingestion.document_chunks(path=path)[1])


def _status(pk: int) -> str:
    return Document.objects.get(pk=pk).status


def test_redis_restart_loses_no_queued_document(
    private_redis, enclave_env, live_vectorstore, client, settings, tmp_path, fixture_dir
):
    admin = helpers.admin_user()
    collection = helpers.make_collection("Queue", groups=[], actor=admin)
    client.force_login(admin)
    big, big_chunks = helpers.write_long(tmp_path, "queue-ledger.txt", 500)
    waiting = [fixtures.make_markdown(fixture_dir), fixtures.make_good_docx(fixture_dir)]
    while_down = fixtures.make_good_pdf(fixture_dir)
    after = fixtures.make_html(fixture_dir)
    expected_chunks = {p.name: _chunks(p) for p in [*waiting, while_down, after]}
    expected_chunks[big.name] = big_chunks

    log = tmp_path / "worker.log"
    env = {**enclave_env, "CELERY_BROKER_URL": private_redis.url}
    worker = start_worker(env=env, log=log, name="redis-restart")
    try:
        # One worker slot: the big file keeps it busy, the other two wait in Redis.
        results = _upload(client, collection, [big, *waiting])
        assert all(r["ok"] and not r["message"] for r in results), results
        ids = {r["name"]: r["id"] for r in results}
        helpers.wait_until(
            lambda: _status(ids[big.name]) == Document.Status.EMBEDDING,
            timeout=180,
            what="the big file being embedded",
        )
        assert {_status(ids[p.name]) for p in waiting} == {Document.Status.QUEUED}

        private_redis.kill()
        # The admin uploads while the queue is down: the file is kept, and they are told.
        [down] = _upload(client, collection, [while_down])
        assert down["ok"] and QUEUE_DOWN in down["message"], down
        assert down["status"] == Document.Status.QUEUED
        ids[while_down.name] = down["id"]
        # The document says so too, on the upload page, for as long as it waits.
        assert Document.objects.get(pk=down["id"]).failure_reason == dispatch.QUEUE_UNAVAILABLE
        page = client.get(reverse("knowledge:upload"), {"collection": collection.pk})
        assert page.status_code == 200
        assert "Waiting for the ingestion queue" in page.content.decode()

        private_redis.start()  # same port, same directory
        assert wait_for_documents([ids[big.name]])[ids[big.name]].status == "indexed"
        # The worker is connected again (once at start, once after the restart).
        helpers.wait_until(
            lambda: log.read_text(errors="replace").count("Connected to redis://") >= 2,
            timeout=60,
            what="the worker to reconnect",
            every=0.2,
        )
        waiting_ids = [ids[p.name] for p in waiting]
        if private_redis.appendonly:
            # The messages survived in the append-only file: no help needed.
            wait_for_documents(waiting_ids, timeout=120)
        else:
            # They died with Redis: still queued in the database, nobody is sending them.
            with pytest.raises(AssertionError):
                wait_for_documents(waiting_ids, timeout=5)
        # The upload made while Redis was down was never sent.
        assert _status(ids[while_down.name]) == Document.Status.QUEUED

        # An upload after the restart is queued for real: it is indexed with no reaper.
        [later] = _upload(client, collection, [after])
        assert later["ok"] and not later["message"], later
        ids[after.name] = later["id"]
        assert wait_for_documents([later["id"]], timeout=120)[later["id"]].status == "indexed"

        # What Celery beat runs every minute. A document whose task could not be sent goes
        # again at its next round; one whose message died with Redis once it has waited
        # INGEST_STALE_SECONDS (shortened here from 15 minutes).
        if not private_redis.appendonly:
            settings.INGEST_STALE_SECONDS = 1
        requeued = set(reaper.ingestion_reap_stale())
        assert ids[while_down.name] in requeued
        if not private_redis.appendonly:
            assert set(waiting_ids) <= requeued
        else:
            assert requeued == {ids[while_down.name]}
        final = wait_for_documents(ids.values(), timeout=180)
    finally:
        kill_worker(worker)
    for name, pk in ids.items():
        helpers.assert_indexed_exactly(final[pk], expected_chunks[name])
