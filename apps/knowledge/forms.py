from django import forms
from django.contrib.auth.models import Group

from apps.knowledge.models import Collection
from apps.core.labels import Label


class CollectionForm(forms.ModelForm):
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Members of these groups may read the collection's documents.",
    )

    class Meta:
        model = Collection
        fields = ["name", "description", "default_label", "groups"]


class LabelForm(forms.Form):
    label = forms.ChoiceField(choices=Label.choices)
