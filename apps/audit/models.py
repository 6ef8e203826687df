"""The audit trail: one append-only, hash-chained table.

Rows are written only by apps.audit.services.audit_record. The database refuses UPDATE,
DELETE and TRUNCATE on the table (migration 0002 installs the triggers), with one
exception: Django's ON DELETE SET NULL of the ``actor`` link when a user is deleted; the
copied ``actor_pk`` and ``actor_username`` are what the hash covers, so that update
changes nothing the chain vouches for.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.core.labels import Label


class AppendOnlyError(Exception):
    """Raised before the database would refuse it anyway: audit rows never change."""


class AuditEvent(models.Model):
    # The event's position in the chain: 1, 2, 3, … assigned under the append lock, so it
    # has no gaps and a fork (two events claiming one position) is a key violation.
    id = models.BigIntegerField(primary_key=True)
    # Database clock, never earlier than the previous event's time (see services).
    time = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_pk = models.BigIntegerField(null=True, blank=True)
    # Personal fields (this one, target_repr of a person's things, the personal keys of
    # details) hold ciphertext under the person's key: apps.audit.personal. Text, since a
    # sealed 150-character name is longer than 150 characters.
    actor_username = models.TextField(blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.TextField(blank=True)
    # Canonical JSON text (see apps.audit.chain), not jsonb: jsonb re-formats numbers, and
    # the hash must be recomputable from the stored bytes. `details_json::jsonb` works in
    # ad-hoc SQL.
    details_json = models.TextField(default="{}")
    # Denormalised from details by audit_record so the console filters use indexes
    # instead of scanning JSON on millions of rows.
    conversation_id = models.CharField(max_length=64, blank=True)
    labels = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    left_premises = models.BooleanField(default=False)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Keyset pagination newest-first inside each filter: (filter column, id).
            models.Index(fields=["action", "id"], name="audit_action_id"),
            models.Index(fields=["actor_username", "id"], name="audit_username_id"),
            # The console's user filter and erasure find a person's events by their id:
            # the sealed username differs in every event.
            models.Index(fields=["actor_pk", "id"], name="audit_actor_pk_id"),
            models.Index(fields=["time", "id"], name="audit_time_id"),
            models.Index(
                fields=["conversation_id", "id"],
                name="audit_conversation_id",
                condition=~models.Q(conversation_id=""),
            ),
            models.Index(
                fields=["id"], name="audit_left_premises", condition=models.Q(left_premises=True)
            ),
            # One small partial index per label: a GIN index cannot return rows in id
            # order, and "newest 50 events touching confidential text" needs exactly that.
            *[
                models.Index(
                    fields=["id"],
                    name=f"audit_label_{label}",
                    condition=models.Q(labels__contains=[label]),
                )
                for label in Label.values
            ],
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(id__gte=1), name="audit_id_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("audit events cannot be deleted")

    @property
    def details(self) -> dict[str, Any]:
        cached = self.__dict__.get("_details")
        if cached is None:
            cached = json.loads(self.details_json)
            self.__dict__["_details"] = cached
        return cached

    @property
    def short_hash(self) -> str:
        return self.hash[:12]


class PersonKey(models.Model):
    """One person's data key for one month of audit events (crypto-shredding).

    ``wrapped`` is the 256-bit AES-GCM key encrypted under AUDIT_PERSONAL_KEY, which the
    database never holds; deleting the row is what makes that person's sealed fields of
    that month unreadable (apps.audit.keys). Not append-only: erasure and retention delete
    rows, and nothing the hash chain vouches for lives here.
    """

    # The key id every sealed value names (apps.audit.personal), random: it says nothing.
    id = models.UUIDField(primary_key=True)
    # Whose key: "user:<pk>", or "anonymous" for what no account can be found for.
    subject = models.CharField(max_length=64)
    # The month of the events it seals, "YYYY-MM": retention drops whole months.
    period = models.CharField(max_length=7)
    wrapped = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "period"], name="audit_personkey_one"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.period}"
