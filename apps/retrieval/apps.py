from django.apps import AppConfig


class RetrievalConfig(AppConfig):
    name = "apps.retrieval"
    default_auto_field = "django.db.models.BigAutoField"
