"""Creating sources and asking a worker to sync one (the sync is apps/knowledge/sync.py)."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from apps.audit.services import audit_record
from apps.core.celery import app
from apps.core.labels import Label
from apps.knowledge.models import Collection, Source
from apps.knowledge.sync import SourceInvalid, check_folder

logger = logging.getLogger(__name__)

SYNC_TASK = "workers.sources.sync_source_task"


def parse_label_rules(text: str) -> list[dict[str, str]]:
    """`folder = label` per line (blank lines and # comments skipped) → the rules."""
    rules: list[dict[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        folder, sep, label = (part.strip() for part in line.partition("="))
        folder = folder.strip("/")
        if not sep or not folder or label not in Label.values:
            raise ValueError(
                f"Line {number} ({line!r}): write “folder = label”, with a label of "
                f"{', '.join(Label.values)}, e.g. “hr/payroll = restricted”."
            )
        rules.append({"folder": folder, "label": label})
    return rules


def format_label_rules(rules: list[dict[str, str]]) -> str:
    return "\n".join(f"{r['folder']} = {r['label']}" for r in rules)


class SourceForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="Used by `manage.py sync_source NAME`.")
    collection = forms.ModelChoiceField(queryset=Collection.objects.order_by("name"))
    path = forms.CharField(
        max_length=1000, help_text="The folder on the server, e.g. /mnt/share/handbook."
    )
    default_label = forms.ChoiceField(
        choices=[("", "the collection's default"), *Label.choices], required=False
    )
    label_rules = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One “folder = label” per line; the longest matching folder wins.",
    )
    interval_minutes = forms.IntegerField(min_value=5, initial=60, label="Sync every (minutes)")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Source.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A source named {name} exists already.")
        return str(name)

    def clean_path(self) -> str:
        try:
            return str(check_folder(self.cleaned_data["path"]))
        except SourceInvalid as err:
            raise forms.ValidationError(str(err)) from err

    def clean_label_rules(self) -> list[dict[str, str]]:
        try:
            return parse_label_rules(self.cleaned_data.get("label_rules") or "")
        except ValueError as err:
            raise forms.ValidationError(str(err)) from err


def source_create(*, data: dict[str, Any], actor: AbstractBaseUser | None) -> Source:
    """A source from a valid SourceForm's cleaned data, audited."""
    with transaction.atomic():
        source = Source.objects.create(
            name=data["name"],
            collection=data["collection"],
            path=data["path"],
            default_label=data.get("default_label") or "",
            label_rules=data.get("label_rules") or [],
            interval_minutes=data["interval_minutes"],
        )
        audit_record(
            actor=actor,
            action="source.created",
            target=source,
            details={
                "source_id": source.pk,
                "collection_id": source.collection_id,
                "path": source.path,
                "default_label": source.default_label,
                "label_rules": source.label_rules,
                "interval_minutes": source.interval_minutes,
            },
        )
    return source


def sync_enqueue(*, source: Source, actor: AbstractBaseUser | None) -> bool:
    """Ask a worker to sync the source now; False when the queue is unavailable."""
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    try:
        app.send_task(
            SYNC_TASK, args=[source.pk], kwargs={"actor_id": actor_id, "trigger": "admin"}
        )
    except Exception:  # kombu raises several types when the broker is down
        logger.exception("could not enqueue a sync of source %s", source.pk)
        return False
    audit_record(
        actor=actor,
        action="source.sync_requested",
        target=source,
        details={"source_id": source.pk, "collection_id": source.collection_id},
    )
    return True
