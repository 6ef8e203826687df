from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running Enclave on one machine: the demo seed and the local process supervisor."""

    name = "apps.ops"
    default_auto_field = "django.db.models.BigAutoField"
