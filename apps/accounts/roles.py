"""Creates the role groups of apps.core.roles with their permissions."""

from django.apps import AppConfig
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from apps.accounts.models import Capability
from apps.core.roles import ROLE_PERMISSIONS


def ensure_roles(using: str = "default") -> None:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    ct = ContentType.objects.db_manager(using).get_for_model(Capability, for_concrete_model=False)
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        perms = []
        for codename in codenames:
            perm, _ = Permission.objects.using(using).get_or_create(
                content_type=ct, codename=codename, defaults={"name": codename}
            )
            perms.append(perm)
        group.permissions.set(perms)


def ensure_roles_after_migrate(sender: AppConfig, **kwargs: object) -> None:
    """post_migrate receiver (AccountsConfig.ready): the groups, once permissions exist."""
    ensure_roles(using=str(kwargs.get("using", "default")))
