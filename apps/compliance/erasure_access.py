"""Everything Enclave holds about a person, as JSON (a subject access request, GDPR Art. 15).

The account and its groups, API tokens (never their secrets), conversations with every
message, feedback and what was searched, the documents they uploaded (not their text: the
file is theirs already, and its text is the company's index), and every audit event about
them with the personal fields opened (in the audit export's shape, hashes included):
their own events, and sign-in attempts that named their account. Written as it is read,
so 10,000 events do not sit in memory twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.assistant.models import Conversation
from apps.audit.keys import subject_kids, user_subject
from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events
from apps.compliance.exports import event_as_object
from apps.knowledge.models import Document

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

FORMAT = "enclave-subject-access/1"
_BATCH = 2000
# The actions whose events name a person they were not done by.
_NAMING_ACTIONS = ("auth.login_failed", "auth.login_locked")


def _dump(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)


def _account(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "first_name": getattr(user, "first_name", ""),
        "last_name": getattr(user, "last_name", ""),
        "email": getattr(user, "email", ""),
        "is_active": user.is_active,
        "date_joined": getattr(user, "date_joined", None),
        "last_login": user.last_login,
        "groups": sorted(user.groups.values_list("name", flat=True)),
    }


def _tokens(user: Any) -> list[dict[str, Any]]:
    fields = ("name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    return list(ApiToken.objects.filter(user_id=user.pk).order_by("created_at").values(*fields))


def _conversations(user: Any) -> Iterator[dict[str, Any]]:
    message_fields = (
        "id",
        "role",
        "content",
        "status",
        "created_at",
        "search_query",
        "model_name",
        "model_where",
        "citations",
        "feedback",
        "feedback_at",
    )
    for conversation in Conversation.objects.filter(user_id=user.pk).order_by("created_at"):
        yield {
            "id": str(conversation.pk),
            "title": conversation.title,
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
            "messages": list(
                conversation.messages.order_by("created_at", "id").values(*message_fields)
            ),
        }


def _documents(user: Any) -> list[dict[str, Any]]:
    fields = (
        "id",
        "title",
        "original_name",
        "collection__name",
        "label",
        "status",
        "sha256",
        "size",
        "created_at",
    )
    return list(Document.objects.filter(uploaded_by_id=user.pk).order_by("pk").values(*fields))


def person_events(*, user_pk: int) -> QuerySet[AuditEvent]:
    """The person's audit events: theirs, and sign-in attempts sealed under their key."""
    naming = Q()
    for kid in subject_kids(subject=user_subject(user_pk)):
        naming |= Q(target_repr__startswith=f"pii1.{kid}.")
    about = Q(actor_pk=user_pk)
    if naming:
        about |= Q(actor_pk__isnull=True, action__in=_NAMING_ACTIONS) & naming
    return AuditEvent.objects.filter(about).order_by("id")


def _events(user_pk: int) -> Iterator[dict[str, Any]]:
    events = person_events(user_pk=user_pk)
    last = 0
    while True:
        batch = reveal_events(events.filter(id__gt=last)[:_BATCH])
        if not batch:
            return
        yield from map(event_as_object, batch)
        last = batch[-1].id


def person_export(*, user: AbstractBaseUser) -> Iterator[str]:
    """The JSON document, in pieces of text to write one after another."""
    head = {
        "format": FORMAT,
        "exported_at": timezone.now(),
        "account": _account(user),
        "api_tokens": _tokens(user),
        "documents_uploaded": _documents(user),
    }
    yield _dump(head)[:-1]
    for name, items in (
        ("conversations", _conversations(user)),
        ("audit_events", _events(int(user.pk))),
    ):
        yield f', "{name}": ['
        separator = "\n"
        for item in items:
            yield separator + _dump(item)
            separator = ",\n"
        yield "\n]"
    yield "}\n"
