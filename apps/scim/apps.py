from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "apps.scim"
    default_auto_field = "django.db.models.BigAutoField"
