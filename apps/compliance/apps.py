from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    """The compliance officer's console over the audit trail (apps.audit keeps the trail)."""

    name = "apps.compliance"
    label = "compliance"
    verbose_name = "Compliance console"
