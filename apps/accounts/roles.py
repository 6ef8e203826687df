"""The three roles of DESIGN.md, as Django groups with permissions."""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

EMPLOYEE = "Employees"
KNOWLEDGE_ADMIN = "Knowledge admins"
COMPLIANCE_OFFICER = "Compliance officers"

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    EMPLOYEE: ("use_assistant",),
    KNOWLEDGE_ADMIN: ("use_assistant", "manage_knowledge"),
    COMPLIANCE_OFFICER: ("review_audit",),
}

PERM_USE_ASSISTANT = "accounts.use_assistant"
PERM_MANAGE_KNOWLEDGE = "accounts.manage_knowledge"
PERM_REVIEW_AUDIT = "accounts.review_audit"


def ensure_roles(using: str = "default") -> None:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    from apps.accounts.models import Capability

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


def role_groups() -> list[str]:
    return list(ROLE_PERMISSIONS)
