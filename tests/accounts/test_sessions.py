"""Sign-in and sessions: key rotation, deactivation, failed-login limits, question rate."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from apps.accounts import ratelimit
from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events
from tests.accounts.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _sign_in(client: Client, username: str, password: str, ip: str = "10.0.0.7"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_session_key_is_rotated_at_sign_in(employee):
    client = Client()
    client.get(reverse("login"))
    session = client.session
    session["before"] = "anonymous visit"  # an anonymous session with a key of its own
    session.save()
    before = session.session_key
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == before

    response = _sign_in(client, "erin", PASSWORD)

    assert response.status_code == 302
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after and after != before
    # The old key is gone from the store: a key fixed by an attacker before sign-in is dead.
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=before).exists()
    assert client.session[SESSION_KEY] == str(employee.pk)


def test_deactivated_user_is_signed_out_on_the_next_request(employee):
    client = Client()
    assert _sign_in(client, "erin", PASSWORD).status_code == 302
    assert client.get(reverse("assistant:chat")).status_code == 200
    old_key = client.cookies[settings.SESSION_COOKIE_NAME].value

    employee.is_active = False
    employee.save(update_fields=["is_active"])

    response = client.get(reverse("assistant:chat"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=old_key).exists()
    ended = AuditEvent.objects.filter(action="auth.logout", actor_id=employee.pk).latest("id")
    assert ended.details["reason"] == "account deactivated"

    # Re-activating the account does not bring the old session back.
    employee.is_active = True
    employee.save(update_fields=["is_active"])
    assert client.get(reverse("assistant:chat")).status_code == 302


def test_failed_sign_ins_are_limited_per_username_and_address(employee, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    client = Client()
    for _ in range(5):
        response = _sign_in(client, "erin", "wrong password")
        assert response.status_code == 200
        assert "Too many" not in response.content.decode()
    failed = reveal_events(AuditEvent.objects.filter(action="auth.login_failed"))
    assert [e.target_repr for e in failed] == ["erin"] * 5  # sealed under erin's key

    # The sixth try is refused even with the right password, and says for how long.
    response = _sign_in(client, "erin", PASSWORD)
    page = response.content.decode()
    assert response.status_code == 200 and SESSION_KEY not in client.session
    assert "Too many failed sign-ins for this account from your address" in page
    assert "15 minutes" in page or "14 min" in page
    [locked] = reveal_events([AuditEvent.objects.filter(action="auth.login_locked").latest("id")])
    assert locked.details["username"] == "erin" and locked.details["ip"] == "10.0.0.7"
    assert locked.details["failures"] == 5

    # The same name from another address, and another name from this one, are not locked.
    assert _sign_in(Client(), "erin", PASSWORD, ip="10.0.0.8").status_code == 302
    assert "Too many" not in _sign_in(Client(), "someone", "x").content.decode()


def test_a_successful_sign_in_clears_the_count(employee, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        _sign_in(Client(), "erin", "wrong")
    assert _sign_in(Client(), "erin", PASSWORD).status_code == 302
    assert ratelimit.login_failures("erin", "10.0.0.7").count == 0
    for _ in range(2):
        _sign_in(Client(), "erin", "wrong")
    assert _sign_in(Client(), "erin", PASSWORD).status_code == 302


def test_the_lock_ends_with_its_window(employee, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    for _ in range(2):
        _sign_in(Client(), "erin", "wrong")
    assert "Too many" in _sign_in(Client(), "erin", PASSWORD).content.decode()
    time.sleep(1.3)
    assert _sign_in(Client(), "erin", PASSWORD).status_code == 302


def test_the_limiter_lets_sign_ins_through_when_redis_is_down(employee, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    settings.LOGIN_FAILURE_LIMIT = 1
    for _ in range(3):
        _sign_in(Client(), "erin", "wrong")
    assert _sign_in(Client(), "erin", PASSWORD).status_code == 302
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3


def test_questions_are_limited_per_user_per_minute(employee, settings):
    settings.QUESTION_RATE_PER_MINUTE = 2
    client = Client()
    client.force_login(employee)
    url = reverse("assistant:ask")
    # Refused for its size: not counted, and the message names the limit.
    too_long = client.post(url, {"question": "x" * (settings.QUESTION_MAX_CHARS + 1)})
    assert too_long.status_code == 400
    assert str(settings.QUESTION_MAX_CHARS) in too_long.json()["error"].replace(",", "")
    for _ in range(2):
        response = client.post(url, {"question": "How many vacation days do I get?"})
        assert response.status_code == 200
        # The stream is never read, so no model is asked.
    refused = client.post(url, {"question": "And sick days?"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    message = refused.json()["error"]
    assert "2 questions in the last minute" in message and "Please wait" in message
    # Per user: another employee still asks.
    from tests.accounts.conftest import make_user

    other = Client()
    other.force_login(make_user("ed", "Employees"))
    response = other.post(url, {"question": "How many vacation days do I get?"})
    assert response.status_code == 200


def test_question_rate_setting_is_checked_at_start_up():
    import os
    import subprocess
    import sys
    from pathlib import Path

    for name, value in (
        ("QUESTION_RATE_PER_MINUTE", "0"),
        ("LOGIN_FAILURE_LIMIT", "0"),
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
        ("OIDC_GROUP_MAP", "no-equals-sign"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", "import apps.config.settings"],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, name: value},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0, name
        assert "ImproperlyConfigured" in result.stderr and name in result.stderr, name
