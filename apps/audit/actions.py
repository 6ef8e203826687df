"""Names of audit actions: namespaced, lower case, e.g. "document.uploaded"."""

import re

ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# The actions Enclave emits; the console offers them as filter choices. Other namespaced
# names are accepted (a new feature must not lose its events to a typo check) but belong
# here once they exist.
KNOWN_ACTIONS: tuple[str, ...] = (
    "auth.login",
    "auth.logout",
    "auth.login_failed",
    "auth.login_locked",
    "auth.groups_synced",
    "document.uploaded",
    "document.indexed",
    "document.failed",
    "document.deleted",
    "document.downloaded",
    "document.label_changed",
    "document.reingest_requested",
    "collection.access_changed",
    "chat.question",
    "chat.retrieval",
    "routing.decision",
    "llm.call",
    "chat.answer",
    "chat.feedback",
    "policy.changed",
    "audit.exported",
    "person.erased",
    "retention.applied",
    # Embedder versions and their blue/green re-index (apps/retrieval/versions.py).
    "embedder.reindex_started",
    "embedder.ready",
    "embedder.activated",
    "embedder.dropped",
    "audit.egress_reported",
    # The API and its personal tokens (apps/api, apps/accounts/tokens.py).
    "api.request",
    "api.token_refused",
    "api_token.created",
    "api_token.revoked",
    "chat.history_supplied",
    # SCIM provisioning (apps/scim): every event names the source "scim".
    "scim.token_created",
    "scim.token_revoked",
    "scim.user_created",
    "scim.user_updated",
    "scim.user_deactivated",
    "scim.user_reactivated",
    "scim.user_deleted",
    "scim.group_created",
    "scim.group_renamed",
    "scim.group_deleted",
    "group.membership_changed",
)
