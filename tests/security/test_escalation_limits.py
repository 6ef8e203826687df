"""Attack: one user, or one team, spends everyone's external-model budget (issue 15,
item 6).

Each user has a daily token limit (EGRESS_USER_DAILY_TOKENS), each group one of its own
(EGRESS_GROUP_DAILY_TOKENS), and escalations are rate-limited per user
(ESCALATION_RATE_PER_MINUTE, in Redis). Through the real escalate view, the real gate and
database and the recording stand-in: whoever reaches a limit is answered locally with the
limit named in plain words, and everyone else keeps theirs.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from apps.assistant.models import Message
from apps.core.roles import EMPLOYEE
from apps.routing import limits
from apps.routing import services as routing
from apps.routing.models import AskerUsage, ProviderUsage
from tests.support.egress import answered, decision_event, escalate, labelled_document
from tests.support.fake_provider import FakeProvider, use_as_provider

pytestmark = pytest.mark.django_db

PUBLIC = "Pathfinder launches on 3 March. The public beta is open to everyone."


@pytest.fixture
def stand_in(settings):
    with FakeProvider(reply="Pathfinder launches on 3 March [1].") as fake:
        use_as_provider(settings, fake, name="fakeai")
        settings.EXTERNAL_LLM_PRICE_PER_1K = 0.5
        # One escalation here is ~150 tokens (the stand-in counts 4 characters a token).
        settings.EGRESS_USER_DAILY_TOKENS = 100
        settings.EGRESS_GROUP_DAILY_TOKENS = 250
        settings.ESCALATION_RATE_PER_MINUTE = 0
        routing.policy_update(actor=None, escalation_enabled=True, non_sensitive_labels=["public"])
        yield fake


@pytest.fixture
def teams(stand_in) -> dict[str, Group]:
    sales, support = Group.objects.create(name="Sales"), Group.objects.create(name="Support")
    routing.provider_access_set(
        actor=None, provider="fakeai", groups=[sales, support], daily_token_budget=100_000,
        daily_cost_budget=Decimal("50"),
    )  # fmt: skip
    return {"Sales": sales, "Support": support}


def _member(name: str, team: Group) -> User:
    user = User.objects.create_user(name, password=f"pw-{name}-12345")
    user.groups.add(Group.objects.get(name=EMPLOYEE), team)
    return user


def _ask(client, user: User) -> dict:
    doc = labelled_document("public", PUBLIC, title=f"Launch for {user.username}")
    answer = answered(user, [doc], question="When does Pathfinder launch?")
    done = escalate(client, user, answer)
    done["reasons"] = decision_event(answer).details["reasons"]
    done["text"] = Message.objects.get(pk=done["message_id"]).content
    return done


def _codes(done: dict) -> list[str]:
    return [r["code"] for r in done["reasons"]]


def test_one_user_reaching_their_daily_limit_leaves_others_theirs(
    client, stand_in, teams, settings
):
    settings.EGRESS_GROUP_DAILY_TOKENS = 0  # the user's limit alone
    greedy, other = _member("greedy", teams["Sales"]), _member("other", teams["Sales"])
    assert _ask(client, greedy)["status"] == "complete"
    used = AskerUsage.objects.get(scope="user", subject_id=greedy.pk, day=limits.today())
    assert used.tokens >= 100 and used.calls == 1

    refused = _ask(client, greedy)
    assert refused["status"] == "kept_local"
    assert _codes(refused) == ["user_limit"]
    assert "You have used your daily limit of 100 tokens with fakeai" in refused["text"]
    assert len(stand_in.requests) == 1  # the second one never left

    assert _ask(client, other)["status"] == "complete"  # same team, own limit
    assert len(stand_in.requests) == 2
    assert ProviderUsage.objects.get(provider="fakeai").calls == 2


def test_one_team_reaching_its_daily_limit_leaves_other_teams_theirs(
    client, stand_in, teams, settings
):
    settings.EGRESS_USER_DAILY_TOKENS = 0  # no per-user limit: the team's alone
    first, second = _member("s1", teams["Sales"]), _member("s2", teams["Sales"])
    helper = _member("h1", teams["Support"])
    assert _ask(client, first)["status"] == "complete"
    assert _ask(client, second)["status"] == "complete"
    sales = AskerUsage.objects.get(scope="group", subject_id=teams["Sales"].pk)
    assert sales.tokens >= 250 and sales.calls == 2

    refused = _ask(client, first)
    assert refused["status"] == "kept_local"
    assert _codes(refused) == ["group_limit"]
    assert (
        "Your group Sales has used its daily limit of 250 tokens with fakeai" in (refused["text"])
    )
    assert _ask(client, helper)["status"] == "complete"  # Support still has its own
    assert len(stand_in.requests) == 3


def test_a_burst_of_escalations_is_rate_limited_per_user(client, stand_in, teams, settings):
    settings.EGRESS_USER_DAILY_TOKENS = 0
    settings.EGRESS_GROUP_DAILY_TOKENS = 0
    settings.ESCALATION_RATE_PER_MINUTE = 2
    burst, calm = _member("burst", teams["Sales"]), _member("calm", teams["Sales"])
    assert [_ask(client, burst)["status"] for _ in range(2)] == ["complete", "complete"]
    refused = _ask(client, burst)
    assert refused["status"] == "kept_local"
    assert _codes(refused) == ["rate"]
    assert "You have asked the stronger model 2 times in the last minute" in refused["text"]
    assert _ask(client, calm)["status"] == "complete"
    assert len(stand_in.requests) == 3


def test_a_refused_question_costs_no_escalation_from_the_rate(client, stand_in, teams, settings):
    settings.ESCALATION_RATE_PER_MINUTE = 1
    settings.EGRESS_USER_DAILY_TOKENS = 0
    settings.EGRESS_GROUP_DAILY_TOKENS = 0
    user = _member("careful", teams["Sales"])
    secret = labelled_document("confidential", "The Bluebird budget.", title="Deal")
    for _ in range(3):
        done = escalate(client, user, answered(user, [secret], question="Budget?"))
        assert done["status"] == "kept_local"
    assert _ask(client, user)["status"] == "complete"
