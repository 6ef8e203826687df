from django import forms
from django.contrib.auth.models import Group

from apps.core.labels import Label
from apps.knowledge.models import Collection


def group_choice_field(*, label: str = "", help_text: str = "") -> forms.ModelMultipleChoiceField:
    """Groups as checkboxes, by name: how every page of Enclave grants something to groups."""
    return forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=label or None,
        help_text=help_text,
    )


class CollectionForm(forms.ModelForm):
    groups = group_choice_field(
        help_text="Members of these groups may read the collection's documents."
    )

    class Meta:
        model = Collection
        fields = ["name", "description", "default_label", "groups"]


class LabelForm(forms.Form):
    label = forms.ChoiceField(choices=Label.choices)
