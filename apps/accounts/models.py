from django.conf import settings
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


class ApiToken(models.Model):
    """A personal API token (README "API"). Only the SHA-256 of the secret is kept: the
    secret is 256 random bits, so a fast hash is enough and no salt is needed; a lookup is
    one indexed equality on `digest`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the token, shown on the settings page to tell tokens apart.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Why it stopped working early: "revoked by its owner", "account deactivated (scim)".
    revoked_reason = models.CharField(max_length=200, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
