"""Settings of personal data (README "Compliance"): the key that wraps each person's audit
data key, and how long conversations and uploaded originals are kept. Read here and
imported by settings.py, which is at its line limit.
"""

from __future__ import annotations

from apps.config.env import Env

env = Env()

# Wraps every person's data key (apps/audit/keys.py); the database holds only wrapped keys,
# so a dump of it alone cannot open a sealed question. Empty: derived from SECRET_KEY.
# Changing it (or SECRET_KEY while it is empty) makes every sealed field unreadable: set a
# dedicated value in production and keep it like the seal key, off the database host.
AUDIT_PERSONAL_KEY = env.key(
    "AUDIT_PERSONAL_KEY", shortest=32, empty="or empty to derive it from SECRET_KEY"
)
# Days a conversation (its questions, answers and feedback) is kept after its last turn;
# 0 keeps conversations until their person is erased.
RETENTION_CONVERSATION_DAYS = env.integer("RETENTION_CONVERSATION_DAYS", default=0, low=0)
# Days the original file of an upload is kept after it was uploaded; the indexed text stays
# searchable, its download then answers 404. 0 keeps originals.
RETENTION_UPLOAD_DAYS = env.integer("RETENTION_UPLOAD_DAYS", default=0, low=0)
# Months of personal fields in audit events: older months' person keys are deleted, so
# their usernames, questions and addresses read "erased" while the chain still verifies.
# 0 keeps them.
RETENTION_AUDIT_PERSONAL_MONTHS = env.integer("RETENTION_AUDIT_PERSONAL_MONTHS", default=0, low=0)
# How often Celery beat applies the periods above.
RETENTION_INTERVAL_SECONDS = env.integer(
    "RETENTION_INTERVAL_SECONDS", default=3600, low=60, want="at least 60 seconds"
)

__all__ = [
    "AUDIT_PERSONAL_KEY",
    "RETENTION_AUDIT_PERSONAL_MONTHS",
    "RETENTION_CONVERSATION_DAYS",
    "RETENTION_INTERVAL_SECONDS",
    "RETENTION_UPLOAD_DAYS",
]
