"""The three roles of DESIGN.md: their group names and the permissions each holds.

apps.accounts.roles creates the groups; every other app asks `user.has_perm(PERM_…)`.
"""

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
