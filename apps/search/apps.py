from django.apps import AppConfig


class SearchConfig(AppConfig):
    """retrieve(), its fusion, and the evaluation that chose them; no models."""

    name = "apps.search"
    default_auto_field = "django.db.models.BigAutoField"
