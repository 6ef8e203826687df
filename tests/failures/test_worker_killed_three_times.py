"""The Celery worker SIGKILLed three times mid-ingestion, each time at a different step:
while parsing, while embedding before the first upsert, and after some upserts.

Every document still ends indexed with exactly the chunk count its file yields, one point
per chunk (point ids derive from document id and chunk number) and no other point.
A restarted worker keeps its name, so its start-up reaper knows the documents it had
claimed are orphaned and sends them again (workers/ingest.py).
"""

from __future__ import annotations

import signal

import pytest
from django.contrib.auth.models import Group

from apps.knowledge.models import Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter
from tests.conftest import wait_for_documents
from tests.failures import helpers
from tests.support.worker import kill_worker, start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

WORKER = "killed-thrice"


def _state(docs: list[Document]) -> list[tuple[int, str, int]]:
    rows = {d.pk: d.status for d in Document.objects.filter(pk__in=[d.pk for d in docs])}
    return [(pk, rows[pk], get_store().count(Filter.of(document_id=[pk]))) for pk in rows]


def test_worker_killed_at_three_steps_every_document_indexed_exactly_once(
    enclave_env, live_vectorstore, tmp_path
):
    readers = Group.objects.create(name="Kill readers")
    collection = helpers.make_collection("Killed thrice", groups=[readers])
    files = [helpers.write_long(tmp_path, f"manual-{n}.txt", 700) for n in "abc"]
    for _, expected in files:
        assert expected > 2 * 64, "each document needs several upsert batches"
    docs = [helpers.upload(collection, path) for path, _ in files]
    expected = {doc.pk: n for doc, (_, n) in zip(docs, files, strict=True)}

    # Each step: (name, does this (id, status, points written) row show it?)
    steps = [
        ("parsing", lambda pk, status, n: status == Document.Status.PARSING),
        ("embedding, nothing written", lambda pk, status, n: status == "embedding" and n == 0),
        (
            "after some upserts",
            lambda pk, status, n: status == "embedding" and 64 <= n < expected[pk],
        ),
    ]
    log = tmp_path / "worker.log"
    hit: list[tuple[str, int]] = []
    for name, seen in steps:
        worker = start_worker(env=enclave_env, log=log, name=WORKER)
        try:
            row = helpers.wait_until(
                lambda seen=seen: next((r for r in _state(docs) if seen(*r)), None),
                timeout=240,
                what=f"a document at step '{name}' ({_state(docs)})",
                every=0.01,
            )
        finally:
            kill_worker(worker, sig=signal.SIGKILL)
        hit.append((name, row[0]))
        # The dead worker cannot move it on: it is orphaned where it was.
        assert Document.objects.get(pk=row[0]).status in ("parsing", "embedding")

    assert [name for name, _ in hit] == [name for name, _ in steps]
    worker = start_worker(env=enclave_env, log=log, name=WORKER)
    try:
        final = wait_for_documents(expected, timeout=480)
    finally:
        kill_worker(worker)
    for pk, chunks in expected.items():
        helpers.assert_indexed_exactly(final[pk], chunks)
    # Each interrupted document was claimed once more per kill, never beyond the limit.
    for _, pk in hit:
        assert 2 <= final[pk].attempts <= 3, (pk, final[pk].attempts)
