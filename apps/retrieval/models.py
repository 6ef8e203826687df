"""Embedder versions: which model embedded a point, and which one answers queries.

Every point in the store carries `embedder` = the pk of the version whose model built its
dense vector, and every search filters on the active version (apps/search/search.py), so
a query never mixes two models' vectors. A new version is filled by a blue/green
re-index while the active one keeps serving (apps/retrieval/versions.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.retrieval.embeddings import model_path

BASE_NAME = "minilm"


class EmbedderVersion(models.Model):
    class State(models.TextChoices):
        BUILDING = "building", "building"  # its points are being written
        READY = "ready", "ready"  # every indexed document has its points; can be activated
        ACTIVE = "active", "active"  # answers queries; exactly one
        RETIRED = "retired", "retired"  # was active; points kept until dropped, not kept current

    name = models.SlugField(max_length=64, unique=True)
    # The model directory; "" is the packaged MiniLM (apps/retrieval/embeddings.model_path).
    path = models.CharField(max_length=500, blank=True, default="")
    base = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derived"
    )
    trained_on = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.READY)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set while a re-index runs: how far it got, for the admin page.
    progress = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="active"), name="one_active_embedder"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    @property
    def model_path(self) -> str:
        """The directory the model loads from (the packaged MiniLM for path "")."""
        return self.path or model_path()

    @property
    def built(self) -> bool:
        """A re-index has filled it (registered is not enough to be activated)."""
        return bool(self.progress.get("finished_at"))

    @property
    def is_base(self) -> bool:
        """The packaged model: its points keep the ids of before versions existed."""
        return not self.path
