from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating Enclave: /healthz, /readyz and /metrics, the demo seed, the local process
    supervisor (`make run`) and snapshots of the Qdrant server collection."""

    name = "apps.ops"
    default_auto_field = "django.db.models.BigAutoField"
