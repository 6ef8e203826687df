from django import forms
from django.contrib.auth.models import Group

from apps.core.labels import Label
from apps.routing.models import EgressPolicy


class PolicyForm(forms.Form):
    escalation_enabled = forms.BooleanField(
        required=False, label="Allow questions to go to the external model"
    )
    non_sensitive_labels = forms.MultipleChoiceField(
        # Restricted never leaves (a missing label reads as restricted): not offered.
        choices=[(v, t) for v, t in Label.choices if v != Label.RESTRICTED],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Labels whose documents may be sent out",
    )
    pii_mode = forms.ChoiceField(
        choices=EgressPolicy.PiiMode.choices, label="Personal data or secrets in a question"
    )
    auto_escalate = forms.BooleanField(
        required=False,
        label="Escalate automatically when the local model cannot answer from relevant passages",
    )


class ProviderAccessForm(forms.Form):
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Groups that may use it",
    )
    daily_token_budget = forms.IntegerField(min_value=0, label="Tokens per day (0: none)")
    daily_cost_budget = forms.DecimalField(
        min_value=0, max_digits=10, decimal_places=4, label="Cost per day (0: none)"
    )
