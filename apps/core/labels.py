"""Sensitivity labels: the vocabulary shared by knowledge, search, routing and audit."""

from django.db import models


class Label(models.TextChoices):
    """Sensitivity labels, least to most sensitive."""

    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


def label_or_restricted(value: object) -> str:
    """DESIGN.md: an unknown, missing or unreadable label counts as restricted."""
    return value if value in Label.values else Label.RESTRICTED
