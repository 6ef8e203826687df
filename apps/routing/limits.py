"""How much of the external model an asker may use, and the reasons when it is spent.

Four limits, each named in plain words when reached:
- the provider's daily budget (tokens and cost, per provider, on the policy page);
- each user's tokens per day (EGRESS_USER_DAILY_TOKENS), so one person cannot spend
  everyone's budget;
- each group's tokens per day (EGRESS_GROUP_DAILY_TOKENS), for every group through which
  the asker may use the provider (a call counts for each of them);
- escalations the gate allows per user per minute (ESCALATION_RATE_PER_MINUTE, counted in
  Redis across web processes; an unreachable counter denies, as any error does).
A limit of 0 is no limit. Days are UTC. `apps.routing.services.external_call_record`
writes the usage these read.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts import ratelimit
from apps.routing.decision import Reason

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from apps.routing.providers import Provider


def today() -> date:
    """The budgets' day (UTC, as USE_TZ keeps it)."""
    return timezone.now().date()


def asker_groups(user: AbstractBaseUser, provider_name: str) -> QuerySet[Group]:
    """The asker's groups that may use the provider, by name."""
    return (
        Group.objects.filter(provider_access__provider=provider_name, user__pk=user.pk)
        .distinct()
        .order_by("name")
    )


# Each of the asker's groups that may use the provider, with the provider's budget and
# today's usage beside it: the provider's, the group's and the asker's own. One statement,
# as the decision is timed (bench/gate.py): the ORM's version with subqueries costs a
# millisecond more to compile than this takes to run.
_ACCESS_SQL = """
SELECT g.id, g.name, a.daily_token_budget, a.daily_cost_budget,
       COALESCE(pu.tokens, 0), COALESCE(pu.cost, 0), COALESCE(gu.tokens, 0),
       COALESCE(uu.tokens, 0)
FROM routing_provideraccess a
JOIN routing_provideraccess_groups ag ON ag.provideraccess_id = a.id
JOIN auth_group g ON g.id = ag.group_id
JOIN auth_user_groups ug ON ug.group_id = g.id AND ug.user_id = %(user)s
LEFT JOIN routing_providerusage pu ON pu.provider = a.provider AND pu.day = %(day)s
LEFT JOIN routing_askerusage gu ON gu.provider = a.provider AND gu.day = %(day)s
     AND gu.scope = 'group' AND gu.subject_id = g.id
LEFT JOIN routing_askerusage uu ON uu.provider = a.provider AND uu.day = %(day)s
     AND uu.scope = 'user' AND uu.subject_id = %(user)s
WHERE a.provider = %(provider)s
ORDER BY g.name
"""


def access_reasons(user: AbstractBaseUser, provider: Provider) -> list[Reason]:
    """Why `user` may not use `provider` now: no group of theirs may, or a daily limit is
    reached. [] when they may."""
    with connection.cursor() as cursor:
        cursor.execute(_ACCESS_SQL, {"user": user.pk, "day": today(), "provider": provider.name})
        rows = cursor.fetchall()
    if not rows:
        return [Reason("group", f"None of your groups may use {provider.name}.")]
    _, _, token_budget, cost_budget, provider_tokens, provider_cost, _, user_tokens = rows[0]
    reasons = []
    if (token_budget and provider_tokens >= token_budget) or (
        cost_budget and provider_cost >= cost_budget
    ):
        reasons.append(Reason("budget", f"Today's budget for {provider.name} is spent."))
    mine = settings.EGRESS_USER_DAILY_TOKENS
    if mine and user_tokens >= mine:
        reasons.append(
            Reason(
                "user_limit",
                f"You have used your daily limit of {mine:,} tokens with {provider.name}: "
                "your questions are answered on our servers until midnight UTC.",
            )
        )
    ours = settings.EGRESS_GROUP_DAILY_TOKENS
    for _, name, *_, group_tokens, _ in rows:
        if ours and group_tokens >= ours:
            reasons.append(
                Reason(
                    "group_limit",
                    f"Your group {name} has used its daily limit of {ours:,} tokens with "
                    f"{provider.name}: its questions are answered on our servers until "
                    "midnight UTC.",
                )
            )
    return reasons


def rate_reason(user: AbstractBaseUser) -> Reason | None:
    """Count one allowed escalation for `user`; a reason when it is one too many."""
    limit = settings.ESCALATION_RATE_PER_MINUTE
    if not limit:
        return None
    window = ratelimit.escalation_hit(user.pk)
    if window.count <= limit:
        return None
    wait = ratelimit.minutes_and_seconds(window.retry_after)
    return Reason(
        "rate",
        f"You have asked the stronger model {limit} times in the last minute, the most "
        f"allowed: wait {wait} and ask again.",
    )
