"""manage.py adapt_embedder on an indexed collection: it trains on the stored chunks,
registers a new embedder version with what it was trained on, and the blue/green
re-index it starts leads to a version that answers once activated."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from apps.core.labels import Label
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.retrieval import versions
from apps.retrieval.adapt import weights_sha256
from apps.retrieval.models import EmbedderVersion
from apps.search.search import retrieve
from tests.conftest import wait_for_documents

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]

TOPICS = {
    "Booking paid leave": "Leave is booked in Workday at least two weeks ahead",
    "Travel expense claims": "Expenses are claimed within thirty days with receipts",
    "Laptop replacement policy": "Laptops are replaced every four years by the IT desk",
    "Visitor parking permits": "Visitors get a parking permit from the reception desk",
}


def _markdown(title: str, lead: str) -> str:
    body = (
        f"{lead}. Your manager approves the request in the same tool. "
        "Questions go to the people team by e-mail. Rules change every spring. "
        "The handbook is the reference when two answers differ."
    )
    when = f"When {title.lower()} fails"
    return f"# {title}\n\n## {title} in practice\n\n{body}\n\n## {when}\n\n{body}\n"


@pytest.fixture
def handbook() -> dict:
    admin = User.objects.create_user("adapt-admin", password="pw-adapt-admin-1")
    admin.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    readers = Group.objects.create(name="Adapt readers")
    reader = User.objects.create_user("adapt-reader", password="pw-adapt-reader-1")
    reader.groups.add(readers, Group.objects.get(name=EMPLOYEE))
    collection = services.collection_create(
        name="Handbook", actor=admin, default_label=Label.INTERNAL, groups=[readers]
    )
    docs = []
    for title, lead in TOPICS.items():
        doc, _ = services.document_create(
            collection=collection,
            upload=ContentFile(_markdown(title, lead).encode(), name=f"{title}.md"),
            user=admin,
        )
        docs.append(doc.pk)
    wait_for_documents(docs)
    return {"admin": admin, "reader": reader}


def test_adapt_embedder_trains_registers_and_reindexes(handbook, capsys):
    base = versions.active_version()
    call_command(
        "adapt_embedder",
        "--collection", "Handbook", "--name", "handbook-1", "--max-minutes", "3",
        "--batch-size", "4", "--no-progress", "--reindex",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "registered embedder version handbook-1" in out
    version = EmbedderVersion.objects.get(name="handbook-1")
    assert version.base_id == base.pk
    trained = version.trained_on
    assert trained["collections"] == ["Handbook"]
    assert trained["passages"] >= len(TOPICS) and trained["steps"] >= 1
    assert trained["weights_sha256"] == weights_sha256(versions.model_dir("handbook-1"))
    # the active version answered throughout; the new one serves once ready and activated
    assert versions.active_version().pk == base.pk
    deadline = time.monotonic() + 240
    while version.state != EmbedderVersion.State.READY and time.monotonic() < deadline:
        time.sleep(1)
        version.refresh_from_db()
    assert version.state == EmbedderVersion.State.READY
    versions.activate(version, handbook["admin"])
    found = retrieve(
        user=handbook["reader"], question="How do I get a parking permit for a visitor?"
    )
    assert found.hits and found.hits[0].title.startswith("Visitor parking permits")


def test_adapt_embedder_refuses_unknown_collections_and_too_little_text(handbook):
    with pytest.raises(CommandError, match="no collection named Nope"):
        call_command("adapt_embedder", "--collection", "Nope")
    with pytest.raises(CommandError, match="too few"):
        call_command(
            "adapt_embedder", "--collection", "Handbook", "--batch-size", "512", "--no-progress"
        )
    assert not EmbedderVersion.objects.exclude(pk=versions.active_version().pk).exists()
