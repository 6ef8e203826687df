"""Erasure end to end: a person signs in, uploads, asks and rates through the real web,
worker, vector store and llama.cpp server; an officer erases them with the console's
button; then their question is nowhere (a real pg_dump, the vector store's payloads and
files, the var/ folder and the processes' logs) and the chain still verifies."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from apps.assistant.models import Conversation, Message
from apps.audit.models import AuditEvent, PersonKey
from apps.audit.personal import ERASED, reveal_events
from apps.audit.verify import verify_chain
from apps.core.labels import Label
from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Document
from apps.retrieval import store as vector_store
from apps.retrieval.store.protocol import Filter
from tests.conftest import wait_for_documents
from tests.support.egress import stream_done

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_worker", "live_llm"),
]

# Words that appear nowhere else, so finding them anywhere means a copy survived.
QUESTION = "How many quokkaberry vouchers does the Zanzibar-Ostrava team get?"
QUESTION_MARK = "quokkaberry"
UPLOAD_MARK = "Wuthertonfield"
UPLOAD = (
    "# Zanzibar-Ostrava team perks\n\n## Vouchers\n\n"
    f"Each member of the Zanzibar-Ostrava team gets 12 vouchers a year. {UPLOAD_MARK} "
    "keeps the voucher list in the team drive.\n"
)
PASSWORD = "pw-erasable-person-1"
ADDRESS = "198.51.100.23"


def _ask(client, question: str) -> dict:
    return stream_done(
        client.post(reverse("assistant:ask"), {"question": question, "conversation": ""})
    )


def _pg_dump() -> str:
    db = connection.settings_dict
    out = subprocess.run(
        ["pg_dump", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432),
         "-U", db["USER"], "--no-owner", db["NAME"]],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    return out.stdout.decode("utf-8", "replace")


def _files_containing(root: Path, needle: str) -> list[Path]:
    found = []
    for path in Path(root).rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(path)
    return found


@pytest.fixture
def people(live_llm):
    team = Group.objects.create(name="Zanzibar-Ostrava team")
    person = User.objects.create_user("zoe-leaver", password=PASSWORD)
    person.groups.add(Group.objects.get(name=EMPLOYEE), Group.objects.get(name=KNOWLEDGE_ADMIN))
    person.groups.add(team)
    stays = User.objects.create_user("sam-stays", password=PASSWORD)
    # Not in the team: an answer of theirs quoting the upload would be their record, and
    # this test looks for every copy of the upload's text.
    stays.groups.add(Group.objects.get(name=EMPLOYEE))
    officer = User.objects.create_user("olga-officer", password=PASSWORD)
    officer.groups.add(Group.objects.get(name=COMPLIANCE_OFFICER))
    collection = services.collection_create(
        name="Team perks", actor=None, default_label=Label.INTERNAL, groups=[team]
    )
    doc, _ = services.document_create(
        collection=collection,
        upload=ContentFile(UPLOAD.encode(), name="perks.md"),
        user=person,
    )
    wait_for_documents([doc.pk])
    assert Document.objects.get(pk=doc.pk).status == "indexed"
    return {"person": person, "stays": stays, "officer": officer, "doc": doc}


def test_an_erased_persons_question_is_nowhere_and_the_chain_still_verifies(
    client, people, tmp_path_factory
):
    person, stays, doc = people["person"], people["stays"], people["doc"]
    assert (
        client.post(
            reverse("login"),
            {"username": person.username, "password": PASSWORD},
            REMOTE_ADDR=ADDRESS,
        ).status_code
        == 302
    )
    done = _ask(client, QUESTION)
    assert (
        client.post(
            reverse("assistant:feedback", args=[done["message_id"]]), {"value": "up"}
        ).status_code
        == 200
    )
    client.force_login(stays)
    kept = _ask(client, "How many vouchers does the team get a year?")
    question_event = AuditEvent.objects.get(action="chat.question", actor_pk=person.pk)
    # Before: sealed in the table, readable in the console, present in the dump.
    assert QUESTION_MARK not in question_event.details_json
    assert reveal_events([question_event])[0].details["question"] == QUESTION
    assert QUESTION_MARK in _pg_dump() and UPLOAD_MARK in _pg_dump()
    store = vector_store.get_store()
    assert store.count(Filter.of(document_id=[doc.pk])) > 0

    # The officer presses the button: find, preview, type the name, erase.
    client.force_login(people["officer"])
    url = reverse("audit:erase")
    preview = client.post(url, {"step": "preview", "username": person.username})
    assert preview.status_code == 200 and "1 uploaded document" in preview.content.decode()
    erased = client.post(
        url, {"step": "erase", "username": person.username, "confirm": person.username}
    )
    assert erased.status_code == 200 and "Erased" in erased.content.decode()

    assert not User.objects.filter(pk=person.pk).exists()
    assert not Conversation.objects.filter(user_id=person.pk).exists()
    assert not Message.objects.filter(conversation_id=done["conversation_id"]).exists()
    assert not Document.objects.filter(pk=doc.pk).exists()
    assert not PersonKey.objects.filter(subject=f"user:{person.pk}").exists()
    assert store.count(Filter.of(document_id=[doc.pk])) == 0

    # The chain: intact by the walker and by the command, rows unchanged.
    assert verify_chain().intact
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue().lower(), out.getvalue()
    assert AuditEvent.objects.get(id=question_event.id).hash == question_event.hash

    # The console shows the fields as erased; the other person's stay readable.
    page = client.get(reverse("audit:event", args=[question_event.id])).content.decode()
    assert ERASED in page and QUESTION_MARK not in page and person.username not in page
    listing = client.get(reverse("audit:events")).content.decode()
    assert QUESTION_MARK not in listing and person.username not in listing
    assert "sam-stays" in listing
    kept_question = reveal_events(
        AuditEvent.objects.filter(action="chat.question", conversation_id=kept["conversation_id"])
    )[0]
    assert kept_question.details["question"] == "How many vouchers does the team get a year?"

    # The erasure is recorded, with counts and the id, without what was erased.
    record = AuditEvent.objects.get(action="person.erased")
    assert record.details["user_id"] == person.pk and record.details["conversations"] == 1
    assert record.details["documents"] == 1 and record.details["feedback"] == 1
    assert person.username not in record.details_json + record.target_repr

    # Nowhere: the database dump, the vector store, var/ and every process's log.
    dump = _pg_dump()
    for needle in (QUESTION_MARK, UPLOAD_MARK, person.username, ADDRESS):
        assert needle not in dump, needle
    for point in store.scroll(Filter.of(collection_id=[doc.collection_id]), limit=1000)[0]:
        assert UPLOAD_MARK not in json.dumps(point.payload)
    store.optimize()
    # The session's folder holds VAR_DIR (media, vectors, seals) and the worker's and the
    # model server's logs.
    session_files = tmp_path_factory.getbasetemp()
    assert Path(settings.VAR_DIR).is_relative_to(session_files)
    assert Path(settings.VECTOR_DATA_DIR).is_relative_to(session_files)
    assert _files_containing(session_files, QUESTION_MARK) == []
    # Not checked, because it does not hold yet: the deleted upload's text stays in the
    # embedded store's WAL and in a segment page (no query returns it) until Qdrant
    # compacts them; README "Erasure and subject access" says so.
