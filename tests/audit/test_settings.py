"""The audit settings refuse a wrong value at start-up, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.audit.archive import checkpoint_key

ROOT = Path(__file__).resolve().parents[2]


def start(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import apps.config.settings"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUDIT_CHECKPOINT_KEY", "too-short"),
        ("AUDIT_CLIENT_IP_HEADER", "X-Real-IP"),
        ("AUDIT_CLIENT_IP_HEADER", "HTTP_X_REAL_IP; rm"),
    ],
)
def test_a_wrong_audit_setting_stops_start_up_with_its_name(name, value):
    result = start(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


def test_good_audit_settings_start():
    result = start(AUDIT_CHECKPOINT_KEY="k" * 32, AUDIT_CLIENT_IP_HEADER="HTTP_X_REAL_IP")
    assert result.returncode == 0, result.stderr


def test_checkpoints_are_signed_with_the_dedicated_key_when_set(settings):
    settings.AUDIT_CHECKPOINT_KEY = ""
    assert checkpoint_key() == ("SECRET_KEY", settings.SECRET_KEY.encode())
    settings.AUDIT_CHECKPOINT_KEY = "k" * 40
    assert checkpoint_key() == ("AUDIT_CHECKPOINT_KEY", b"k" * 40)
