from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

from apps.core.labels import Label


def _default_non_sensitive() -> list[str]:
    return [Label.PUBLIC]


class EgressPolicy(models.Model):
    """The one egress policy (a single row, id 1). Safe by default: nothing leaves."""

    class PiiMode(models.TextChoices):
        BLOCK = "block", "Block: keep the question local"
        REDACT = "redact", "Redact the findings, then send"

    escalation_enabled = models.BooleanField(
        default=False, help_text="Allow questions to go to the external provider at all."
    )
    non_sensitive_labels = models.JSONField(
        default=_default_non_sensitive,
        help_text="Labels whose documents may be sent out. Unknown labels never are.",
    )
    pii_mode = models.CharField(max_length=16, choices=PiiMode.choices, default=PiiMode.BLOCK)
    auto_escalate = models.BooleanField(
        default=False,
        help_text="Escalate by itself when the local model is unsure while retrieval is sure.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "egress policy"
        verbose_name_plural = "egress policy"

    def __str__(self) -> str:
        return "Egress policy"


class ProviderAccess(models.Model):
    """Who may use an external provider (by its EXTERNAL_LLM_NAME), and its daily budget."""

    provider = models.CharField(max_length=100, unique=True)
    groups = models.ManyToManyField(Group, blank=True, related_name="provider_access")
    daily_token_budget = models.PositiveIntegerField(
        default=200_000, help_text="Prompt plus completion tokens per day (UTC); 0 = none."
    )
    daily_cost_budget = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("10"), help_text="Per day (UTC); 0 = none."
    )

    def __str__(self) -> str:
        return self.provider


class ProviderUsage(models.Model):
    """What a provider has been sent today; the budget check reads it."""

    provider = models.CharField(max_length=100)
    day = models.DateField()
    tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "day"], name="routing_usage_one_row_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day}"


class AskerUsage(models.Model):
    """What one user, or one group, has sent to a provider on a day: the per-user and
    per-group daily limits read it (apps/routing/limits.py). The subject is an id, not a
    foreign key, so a day's usage outlives the account or group it counted."""

    class Scope(models.TextChoices):
        USER = "user", "User"
        GROUP = "group", "Group"

    provider = models.CharField(max_length=100)
    day = models.DateField()
    scope = models.CharField(max_length=8, choices=Scope.choices)
    subject_id = models.PositiveBigIntegerField()  # the user's or the group's id
    tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "day", "scope", "subject_id"],
                name="routing_asker_usage_one_row_per_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day} {self.scope} {self.subject_id}"
