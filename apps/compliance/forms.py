from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.utils import timezone

from apps.audit.actions import ACTION_RE, KNOWN_ACTIONS
from apps.compliance.selectors import EventFilter
from apps.core.labels import Label


def _action_choices() -> list[tuple[str, str]]:
    namespaces = sorted({a.split(".")[0] for a in KNOWN_ACTIONS})
    return [
        ("", "any action"),
        *[(f"{ns}.*", f"{ns}.* (all)") for ns in namespaces],
        *[(a, a) for a in KNOWN_ACTIONS],
    ]


class EventFilterForm(forms.Form):
    """The console's filters. Read from GET, so a filtered view is a shareable URL."""

    start = forms.DateTimeField(
        required=False,
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="inclusive; a date alone means its midnight",
    )
    end = forms.DateTimeField(
        required=False,
        label="Until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="exclusive",
    )
    user = forms.CharField(required=False, max_length=150, label="User")
    action = forms.CharField(required=False, max_length=64, label="Action")
    label = forms.ChoiceField(
        required=False, choices=[("", "any label"), *Label.choices], label="Label"
    )
    left_premises = forms.BooleanField(required=False, label="Left the premises")
    conversation = forms.CharField(required=False, max_length=64, label="Conversation")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["action"].widget = forms.Select(choices=_action_choices())

    def clean_action(self) -> str:
        value = self.cleaned_data.get("action") or ""
        bare = value[:-2] if value.endswith(".*") else value
        if value and not (ACTION_RE.match(bare) or ACTION_RE.match(bare + ".x")):
            raise forms.ValidationError("Not an action name.")
        return value

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if isinstance(start, datetime) and isinstance(end, datetime) and end <= start:
            raise forms.ValidationError("'Until' must be after 'From'.")
        return data

    def to_filter(self) -> EventFilter:
        """The validated filter (call after is_valid())."""
        data = self.cleaned_data
        return EventFilter(
            start=_aware(data.get("start")),
            end=_aware(data.get("end")),
            username=(data.get("user") or "").strip(),
            action=data.get("action") or "",
            label=data.get("label") or "",
            left_premises=bool(data.get("left_premises")),
            conversation_id=(data.get("conversation") or "").strip(),
        )


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    return timezone.make_aware(datetime.combine(value, time.min))
