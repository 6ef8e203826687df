"""The vector store owner (`manage.py vectorstore`) SIGKILLed mid-ingestion, then restarted
on the same data directory.

No acknowledged point is lost (the owner answers an upsert only once qdrant-edge has it in
its write-ahead log), the interrupted documents finish exactly, and the chat says search
is unavailable while the owner is down and answers again once it is back.

This module runs an owner of its own (own data directory and socket) so the session's
shared owner is never disturbed; settings and the worker's environment point at it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.urls import reverse

from apps.assistant import services as chat
from apps.knowledge import services
from apps.knowledge.models import Document
from apps.retrieval.store import reset_store
from tests.conftest import wait_for_documents
from tests.failures import helpers
from tests.support.vectorstore import start_vectorstore, stop_vectorstore
from tests.support.worker import kill_worker, start_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_llm"),
    pytest.mark.timeout(900),
]

VACATION = (
    "# Vacation policy\n\n## Vacation days\n\n"
    "New employees get 25 vacation days per year. Unused vacation days can be carried over "
    "until March 31 of the next year. Vacation requests go to your manager at least two "
    "weeks ahead.\n"
)
QUESTION = "How many vacation days do new employees get?"


@pytest.fixture(scope="module")
def own_store(enclave_env, tmp_path_factory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("own-vs")
    data_dir, sock = base / "vectors", base / "vs.sock"
    saved = django_settings.VECTOR_DATA_DIR, django_settings.VECTOR_SOCKET
    env = {**enclave_env, "VECTOR_DATA_DIR": str(data_dir), "VECTOR_SOCKET": str(sock)}
    holder = {"proc": start_vectorstore(data_dir, sock, env=env), "env": env}
    holder.update(data_dir=data_dir, socket=sock)
    django_settings.VECTOR_DATA_DIR, django_settings.VECTOR_SOCKET = data_dir, sock
    reset_store()
    try:
        yield holder
    finally:
        stop_vectorstore(holder["proc"], sig=signal.SIGKILL)
        django_settings.VECTOR_DATA_DIR, django_settings.VECTOR_SOCKET = saved
        reset_store()


def _ask(client, user) -> list[tuple[str, dict]]:  # noqa: ANN001
    client.force_login(user)
    resp = client.post(reverse("assistant:ask"), {"question": QUESTION})
    assert resp.status_code == 200
    return helpers.sse_events(resp.streaming_content)


def test_owner_killed_mid_ingestion_loses_no_acknowledged_point_and_chat_recovers(
    own_store, client, settings, tmp_path
):
    settings.LOCAL_LLM_MAX_TOKENS = 48
    readers = Group.objects.create(name="Store readers")
    collection = helpers.make_collection("Store crash", groups=[readers])
    alice = helpers.employee("vs-alice", readers)
    log = tmp_path / "worker.log"
    worker = start_worker(env=own_store["env"], log=log, name="vs-crash")
    try:
        first, _ = services.document_create(
            collection=collection,
            upload=ContentFile(VACATION.encode(), name="vacation.md"),
            user=None,
        )
        first = wait_for_documents([first.pk])[first.pk]
        assert first.status == Document.Status.INDEXED, first.failure_reason
        files = [helpers.write_long(tmp_path, f"ledger-{n}.txt", 700) for n in "ab"]
        docs = [helpers.upload(collection, path) for path, _ in files]
        expected = {d.pk: n for d, (_, n) in zip(docs, files, strict=True)}
        expected[first.pk] = first.chunk_count
        doc_a = docs[0]

        # Mid-ingestion: part of the first big document's points are written.
        helpers.wait_until(
            lambda: (
                Document.objects.get(pk=doc_a.pk).status == Document.Status.EMBEDDING
                and len(helpers.point_ids(doc_a.pk)) >= 128
            ),
            timeout=240,
            what="the first big document half-written",
            every=0.01,
        )
        acknowledged = set(helpers.point_ids(doc_a.pk)) | set(helpers.point_ids(first.pk))
        stop_vectorstore(own_store["proc"], sig=signal.SIGKILL)

        # While it is down: the chat says so (and keeps the question), the worker waits.
        events = _ask(client, alice)
        [done] = [data for kind, data in events if kind == "done"]
        assert done["status"] == "failed"
        assert done["error"] == chat.SEARCH_UNAVAILABLE
        assert "Search is unavailable" in done["error"]
        helpers.wait_until(
            lambda: "Retry in" in log.read_text(errors="replace"),
            timeout=60,
            what="the worker to retry the interrupted document",
            every=0.1,
        )
        # Hold the worker still, so what the restarted owner holds is what it had kept.
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            own_store["proc"] = start_vectorstore(
                own_store["data_dir"], own_store["socket"], env=own_store["env"]
            )
            after_restart = set(helpers.point_ids(doc_a.pk)) | set(helpers.point_ids(first.pk))
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        lost = acknowledged - after_restart
        assert not lost, f"{len(lost)} acknowledged points lost"

        final = wait_for_documents(expected, timeout=480)
    finally:
        kill_worker(worker)
    for pk, chunks in expected.items():
        helpers.assert_indexed_exactly(final[pk], chunks)
    assert final[doc_a.pk].attempts >= 2  # interrupted, then finished by a retry

    # Search is back, with no restart of the web side: the answer cites the document.
    events = _ask(client, alice)
    done = [data for kind, data in events if kind == "done"][0]
    assert done["status"] == "complete", done
    assert done["error"] != chat.SEARCH_UNAVAILABLE
    metas = [data for kind, data in events if kind == "meta"]
    assert metas and metas[0]["passages"] > 0
