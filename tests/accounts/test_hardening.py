"""Production settings, the Content-Security-Policy, and originals only through a view."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve, reverse

from apps.audit.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "ENCLAVE_DEV": "false",
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "enclave.example.com",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_with_no_warning():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_development_keeps_plain_http():
    """`make run` serves http://127.0.0.1:8000: no redirect to https, no secure-only
    cookies. check --deploy says so, which is right for a development machine."""
    result = _manage("check", "--deploy")
    output = result.stdout + result.stderr
    assert "security.W008" in output  # SECURE_SSL_REDIRECT off
    assert "security.W012" in output  # session cookie not secure-only
    assert not settings.SECURE_SSL_REDIRECT and not settings.SESSION_COOKIE_SECURE


def test_production_redirects_to_https_but_not_behind_the_proxy_header():
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='enclave.example.com')\n"
        "print('plain', c.get('/login/').status_code, c.get('/login/').get('Location'))\n"
        "r = c.get('/login/', HTTP_X_FORWARDED_PROTO='https')\n"
        "print('proxied', r.status_code, r.get('Strict-Transport-Security'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **PRODUCTION, "DJANGO_SETTINGS_MODULE": "apps.config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "plain 301 https://enclave.example.com/login/" in result.stdout
    assert "proxied 200 max-age=31536000; includeSubDomains; preload" in result.stdout


@pytest.mark.django_db
def test_every_page_carries_a_strict_content_security_policy():
    response = Client().get(reverse("login"))
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.I)


def test_no_template_has_inline_script_handlers_or_styles():
    """CSP without 'unsafe-inline' would block them in the browser: none may exist."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JS_URL, INLINE_STYLE):
            found += [
                f"{path.relative_to(ROOT)}: {m.group(0)[:60]}" for m in pattern.finditer(text)
            ]
    assert found == []


def test_static_scripts_do_not_need_eval():
    found = []
    for path in sorted((ROOT / "static").rglob("*.js")):
        text = path.read_text()
        for pattern in (r"\beval\s*\(", r"new\s+Function\s*\(", r"setTimeout\s*\(\s*[\"']"):
            found += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
        # Markup built in JS must not carry handlers either.
        found += [f"{path.name}: handler" for m in INLINE_HANDLER.finditer(text)]
    assert found == []


# --- originals ---------------------------------------------------------------------------


def test_media_root_has_no_url(world):
    """The file is on disk, and no URL reaches it except the access-checked view."""
    stored = world.document.file.name  # e.g. documents/2026/05/vacation-policy.md
    assert (Path(settings.MEDIA_ROOT) / stored).exists()
    for path in (f"/media/{stored}", f"/{stored}", f"{settings.MEDIA_URL or '/'}{stored}"):
        with pytest.raises(Resolver404):
            resolve(path)
        for user in (None, world.users["employee"], world.users["knowledge_admin"]):
            client = Client()
            if user:
                client.force_login(user)
            assert client.get(path).status_code == 404, path


def test_download_is_checked_audited_and_never_rendered(world):
    from tests.accounts.conftest import make_user

    url = reverse("knowledge:document_download", args=[world.document.pk])
    reader = Client()
    reader.force_login(world.users["employee"])
    response = reader.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == world.document.file.open("rb").read()
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]
    event = AuditEvent.objects.filter(action="document.downloaded").latest("id")
    assert event.actor_id == world.users["employee"].pk
    assert event.details["label"] == "internal"

    # An employee outside the collection's groups: 404, as if the document did not exist.
    outsider = Client()
    outsider.force_login(make_user("ola", "Employees"))
    assert outsider.get(url).status_code == 404
    missing = reverse("knowledge:document_download", args=[world.document.pk + 10_000])
    assert outsider.get(missing).status_code == 404

    # A revoked grant closes the download at once.
    world.collection.groups.clear()
    assert reader.get(url).status_code == 404


def test_security_settings_are_in_the_readme_table():
    """Each variable of settings' sign-in/HTTPS section has its row in README Configuration."""
    source = (ROOT / "apps" / "config" / "settings.py").read_text()
    start = source.index("# --- Sign-in, sessions and HTTPS")
    end = source.index("\n# --- ", start + 1)
    names = set(re.findall(r'env(?:\.\w+)?\("([A-Z0-9_]+)"', source[start:end]))
    assert {"ENCLAVE_HTTPS", "QUESTION_RATE_PER_MINUTE", "OIDC_GROUP_MAP"} <= names
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    missing = {n for n in names if not any(f"`{n}`" in row for row in rows)}
    # ENCLAVE_DEV is read again here; its row predates this section.
    assert missing == set()
