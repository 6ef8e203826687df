"""A Source (a directory synced into a collection) and the report of each of its syncs.

Imported by apps/knowledge/models.py, so Django finds the models in this app; the sync
itself is apps/knowledge/sync.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.labels import Label


class Source(models.Model):
    """A folder (in practice a mounted company share) whose files a collection mirrors.

    `label_rules` is a list of {"folder": "hr/payroll", "label": "restricted"}: a file
    under a rule's folder gets its label (the longest matching folder wins); any other
    file gets `default_label`, or the collection's default when that is blank.
    """

    name = models.CharField(max_length=100, unique=True)
    collection = models.ForeignKey(
        "knowledge.Collection", on_delete=models.PROTECT, related_name="sources"
    )
    path = models.CharField(max_length=1000)
    default_label = models.CharField(max_length=16, choices=Label.choices, blank=True)
    label_rules = models.JSONField(default=list, blank=True)
    interval_minutes = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SyncRun(models.Model):
    """One sync of one source: what it found, what it did, and why files failed."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Command"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    files_seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    # [{"path": "hr/old.xls", "reason": "…"}], one per file that could not be synced.
    failures = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)  # why the whole sync stopped, if it did

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source.name} at {self.started_at:%Y-%m-%d %H:%M}"
