"""Users in each role, and one small world of objects the employee owns or may read."""

from __future__ import annotations

import hashlib
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile

from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE, KNOWLEDGE_ADMIN

PASSWORD = "correct-horse-battery-9"
ROLES = ("anonymous", "employee", "knowledge_admin", "officer")


@pytest.fixture(autouse=True)
def fresh_counters(settings) -> None:
    """Each test counts sign-ins and questions under its own cache prefix (the keys
    expire on their own); clearing the cache would flush a Redis database others share."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"t-{uuid.uuid4().hex}"}
    }


def make_user(username: str, *groups: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, email=f"{username}@example.com")
    user.groups.add(*(Group.objects.get_or_create(name=g)[0] for g in groups))
    return user


@pytest.fixture
def employee(db) -> User:
    return make_user("erin", EMPLOYEE, "Handbook readers")


@pytest.fixture
def knowledge_admin(db) -> User:
    return make_user("adam", KNOWLEDGE_ADMIN)


@pytest.fixture
def officer(db) -> User:
    return make_user("olivia", COMPLIANCE_OFFICER)


def make_document(collection, title: str, body: bytes, label: str = "internal"):
    from apps.knowledge.models import Document

    doc = Document(
        collection=collection,
        title=title,
        original_name=f"{title.lower().replace(' ', '-')}.md",
        mime_type="text/markdown",
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        label=label,
        status=Document.Status.INDEXED,
        text=body.decode(),
        chunk_count=1,
    )
    doc.file.save(doc.original_name, ContentFile(body), save=True)
    return doc


@pytest.fixture
def world(employee, knowledge_admin, officer) -> SimpleNamespace:
    """A collection the employee reads, two documents in it, the employee's conversation
    with one cited answer, and an audit event of that conversation."""
    from apps.assistant.models import Conversation, Message
    from apps.audit.services import audit_record
    from apps.knowledge.models import Collection, Source

    collection = Collection.objects.create(name="Handbook", default_label="internal")
    collection.groups.add(Group.objects.get(name="Handbook readers"))
    body = b"# Vacation\n\nNew employees get 25 vacation days per year.\n"
    doc = make_document(collection, "Vacation policy", body)
    doomed = make_document(collection, "Old policy", b"# Old\n\nSuperseded.\n")
    conversation = Conversation.objects.create(user=employee, title="Vacation")
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content="How many vacation days?"
    )
    answer = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        reply_to=question,
        content="25 days [1].",
        passages=[
            {
                "n": 1,
                "chunk_id": f"{doc.pk}-0",
                "document_id": doc.pk,
                "collection_id": collection.pk,
                "title": doc.title,
                "section": "Vacation",
                "page": None,
                "char_start": 12,
                "char_end": 40,
                "label": "internal",
                "score": 0.9,
            }
        ],
        citations=[{"n": 1, "chunk_id": f"{doc.pk}-0"}],
    )
    event = audit_record(
        actor=employee,
        action="chat.question",
        details={"conversation_id": str(conversation.pk), "question_id": question.pk},
    )
    source = Source.objects.create(name="Share", collection=collection, path="/srv/share")
    return SimpleNamespace(
        collection=collection,
        source=source,
        document=doc,
        doomed=doomed,
        conversation=conversation,
        answer=answer,
        event=event,
        users={"employee": employee, "knowledge_admin": knowledge_admin, "officer": officer},
    )
