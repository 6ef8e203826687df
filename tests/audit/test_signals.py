"""Sign-in, sign-out and failed sign-in are recorded with the username and address."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events
from tests.audit.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_and_logout_are_recorded_with_the_address(client, make_user):
    user = make_user(username="carol")
    response = client.post(
        reverse("login"), {"username": "carol", "password": PASSWORD}, REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 302
    client.post(reverse("logout"), REMOTE_ADDR="10.1.2.3")
    events = reveal_events(AuditEvent.objects.order_by("id"))
    assert [(e.action, e.actor_id, e.actor_username) for e in events] == [
        ("auth.login", user.pk, "carol"),
        ("auth.logout", user.pk, "carol"),
    ]
    assert events[0].details == {"ip": "10.1.2.3"}


def test_failed_login_records_the_attempted_username_and_never_the_password(client, make_user):
    make_user(username="dave")
    for username in ("dave", "nobody-by-that-name"):
        response = client.post(
            reverse("login"),
            {"username": username, "password": "wrong-password-123"},
            REMOTE_ADDR="192.0.2.7",
        )
        assert response.status_code == 200  # the form again, with an error
    events = reveal_events(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == ["auth.login_failed", "auth.login_failed"]
    assert [e.details for e in events] == [
        {"username": "dave", "ip": "192.0.2.7"},
        {"username": "nobody-by-that-name", "ip": "192.0.2.7"},
    ]
    assert all(e.actor_id is None and e.actor_username == "" for e in events)
    assert [e.target_repr for e in events] == ["dave", "nobody-by-that-name"]
    assert not any("wrong-password" in e.details_json for e in events)


def test_client_ip_header_is_only_believed_when_configured(client, make_user, settings):
    make_user(username="eve")
    client.post(
        reverse("login"),
        {"username": "eve", "password": "nope-nope-nope"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )
    settings.AUDIT_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    client.post(
        reverse("login"),
        {"username": "eve", "password": "nope-nope-nope"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.5, 10.0.0.1",
    )
    ips = [e.details["ip"] for e in reveal_events(AuditEvent.objects.order_by("id"))]
    assert ips == ["10.0.0.1", "203.0.113.5"]
