from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Permissions exist only after post_migrate; the role groups are built from them.
        post_migrate.connect(_ensure_roles_after_migrate, sender=self)


def _ensure_roles_after_migrate(sender: AppConfig, **kwargs: object) -> None:
    from apps.accounts.roles import ensure_roles

    ensure_roles(using=str(kwargs.get("using", "default")))
