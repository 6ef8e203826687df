from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    """Operating Enclave: /healthz, /readyz and /metrics, the demo seed, the local process
    supervisor (`make run`), snapshots of the Qdrant server collection, and the database
    grants of the application's role after each migrate."""

    name = "apps.ops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: db_roles imports the audit models, which Django
        # loads only after every app's config.
        from apps.ops.db_roles import grant_after_migrate

        # post_migrate is sent once per app that has models, after all migrations ran; ops
        # has none, so the grants hang on the audit app's signal, whose table they guard.
        post_migrate.connect(
            grant_after_migrate,
            sender=apps.get_app_config("audit"),
            dispatch_uid="apps.ops.db_roles.grant_after_migrate",
        )
