"""How often each model was called and answered, counted from the trail incrementally."""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection

from apps.audit.models import AuditEvent
from apps.compliance.selectors import last_event_id

# (action, where, provider, model, status) -> count. where is "external" or anything else
# (local); status is a chat.answer's ("complete", "failed", …), "" where none is given.
UsageKey = tuple[str, str, str, str, str]
_USAGE_ACTIONS = ("llm.call", "chat.answer")
MODEL_USAGE_CACHE_KEY = "audit:model-usage:v2"


def _count_usage(after_id: int, upto_id: int) -> dict[UsageKey, int]:
    if upto_id <= after_id:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT action, coalesce(d->>'where', ''), coalesce(d->>'provider', ''), "
            "coalesce(d->>'model', ''), coalesce(d->>'status', ''), count(*) FROM ("
            "SELECT action, details_json::jsonb AS d FROM audit_auditevent "
            "WHERE action IN (%s, %s) AND id > %s AND id <= %s"
            ") AS used GROUP BY 1, 2, 3, 4, 5",
            [*_USAGE_ACTIONS, after_id, upto_id],
        )
        return {(a, w, p, m, st): n for a, w, p, m, st, n in cursor.fetchall()}


def model_usage_counts() -> tuple[dict[UsageKey, int], int]:
    """How often each model was called and answered, and the last event id counted.

    The trail only grows, so the counts up to an event never change: they are cached
    with that event's id and hash, and each later call only counts the events after it
    (one index range scan), instead of parsing every llm.call of a million-row trail on
    every page view. A cached event whose hash no longer matches (a test database
    flushed and refilled) means counting from the start again.
    """
    upto = last_event_id()
    cached = cache.get(MODEL_USAGE_CACHE_KEY)
    counts: dict[UsageKey, int] = {}
    after = 0
    if cached and cached.get("upto", 0) <= upto:
        still = AuditEvent.objects.filter(id=cached["upto"]).values_list("hash", flat=True).first()
        if cached["upto"] == 0 or still == cached.get("hash"):
            counts = {tuple(key): n for key, n in cached["counts"]}
            after = cached["upto"]
    for key, n in _count_usage(after, upto).items():
        counts[key] = counts.get(key, 0) + n
    if upto != after or not cached:
        upto_hash = AuditEvent.objects.filter(id=upto).values_list("hash", flat=True).first()
        cache.set(
            MODEL_USAGE_CACHE_KEY,
            {"upto": upto, "hash": upto_hash, "counts": [[list(k), n] for k, n in counts.items()]},
            timeout=None,
        )
    return counts, upto
