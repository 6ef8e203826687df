from django.db import models


class Capability(models.Model):
    """Carries the role permissions; no table of its own.

    The three roles are Django groups holding these permissions, so code asks
    `user.has_perm("accounts.manage_knowledge")` and never compares group names.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_assistant", "Ask questions and read cited sources"),
            ("manage_knowledge", "Create collections, upload, label and delete documents"),
            ("review_audit", "Read, filter, export and verify the audit trail"),
        ]

    def __str__(self) -> str:
        return "role capabilities"
