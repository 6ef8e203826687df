from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: roles.py imports the models, which Django loads
        # only after every app's config.
        from apps.accounts.roles import ensure_roles_after_migrate

        # Permissions exist only after post_migrate; the role groups are built from them.
        post_migrate.connect(ensure_roles_after_migrate, sender=self)
