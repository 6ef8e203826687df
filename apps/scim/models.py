from django.db import models


class ScimToken(models.Model):
    """The bearer token an identity provider provisions with (README "Provisioning").
    Made by `manage.py scim_token create`, shown once; only its SHA-256 is kept (the
    secret is 256 random bits, so no salt or slow hash is needed)."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
