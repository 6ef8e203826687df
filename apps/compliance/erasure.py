"""Erasing a person (GDPR Art. 17) while the audit chain still verifies.

What goes, in one transaction: the person's conversations (their questions, the answers,
the feedback on them), the documents they uploaded (file, text and every vector point,
through knowledge's document_delete), their API tokens and their account; then their
person keys, which is what makes the personal fields of their audit events (username,
questions, searches, addresses, sign-in attempts on their account) unreadable for good
(apps.audit.keys). No audit row changes: the chain hashes the sealed text, which stays.
The erasure is recorded as ``person.erased`` with counts and the account's id, never its
name or anything it wrote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.accounts.models import ApiToken
from apps.assistant.models import Conversation, Message
from apps.audit.keys import subject_keys_delete, subject_kids, user_subject
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.knowledge.models import Document
from apps.knowledge.services import document_delete

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class ErasureError(ValueError):
    """An erasure that cannot be done, said so a person can act on it."""


@dataclass(frozen=True)
class Erasure:
    """What one erasure removed (what ``person.erased`` records, and the page shows)."""

    user_id: int
    conversations: int
    messages: int
    feedback: int
    documents: int
    api_tokens: int
    audit_events: int  # events of the person whose personal fields are now unreadable
    keys: int


def person_get(*, username: str) -> AbstractBaseUser:
    """The account to erase or export; ErasureError naming the username otherwise."""
    model = get_user_model()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        raise ErasureError(
            f"No account is named {username!r}: check the spelling (names are case-sensitive);"
            " an erased person has no account any more."
        )
    return user


def person_preview(*, user: AbstractBaseUser) -> Erasure:
    """What person_erase would remove now (nothing is changed)."""
    messages = Message.objects.filter(conversation__user_id=user.pk)
    return Erasure(
        user_id=int(user.pk),
        conversations=Conversation.objects.filter(user_id=user.pk).count(),
        messages=messages.count(),
        feedback=messages.filter(feedback__isnull=False).count(),
        documents=Document.objects.filter(uploaded_by_id=user.pk).count(),
        api_tokens=ApiToken.objects.filter(user_id=user.pk).count(),
        audit_events=AuditEvent.objects.filter(actor_pk=user.pk).count(),
        keys=len(subject_kids(subject=user_subject(user.pk))),
    )


def person_erase(*, user: AbstractBaseUser, actor: AbstractBaseUser | None) -> Erasure:
    """Erase `user` (see the module docstring); `actor` is the officer, None for the command.

    The account goes before the documents: deleting it clears ``actor_id`` on its audit
    events (the one change the append-only trigger allows), and that long update runs
    before the first audit append takes the chain's lock, so other writers wait only for
    the short rest of the transaction.
    """
    if actor is not None and actor.pk == user.pk:
        raise ErasureError("You cannot erase your own account; ask another compliance officer.")
    with transaction.atomic():
        counts = person_preview(user=user)
        documents = list(Document.objects.filter(uploaded_by_id=user.pk).order_by("pk"))
        Conversation.objects.filter(user_id=user.pk).delete()  # messages and feedback with it
        keys = subject_keys_delete(subject=user_subject(user.pk))
        user.delete()  # API tokens with it; audit events keep actor_pk, lose the link
        for document in documents:
            document_delete(document=document, actor=actor)
        done = Erasure(**{**asdict(counts), "keys": keys})
        audit_record(actor=actor, action="person.erased", details=asdict(done))
    return done
