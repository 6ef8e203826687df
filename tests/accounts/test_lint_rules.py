"""The local semgrep rules (.semgrep/) catch what they promise, offline.

A rule that silently matches nothing would keep `make lint` green forever: each rule is
run here on a small file that breaks it, and on the same code where it is allowed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEMGREP = ROOT / ".venv" / "semgrep" / "bin" / "semgrep"

BAD = """
import openai
from anthropic.types import Message
import importlib
client = importlib.import_module("openai")
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt


def view(cursor, name, text):
    cursor.execute(f"SELECT * FROM t WHERE name = '{name}'")
    cursor.execute("SELECT * FROM t WHERE name = '%s'" % name)
    sql = f"DELETE FROM {name}"
    cursor.execute(sql)
    cursor.execute("SELECT * FROM t WHERE name = %s", [name])  # fine: a parameter
    mark_safe("<b>fine: a literal</b>")
    return mark_safe(text)


@csrf_exempt
def hook(request):
    return None


def provider_key(settings, os, name):
    settings.EXTERNAL_LLM_API_KEY
    getattr(settings, "EXTERNAL_LLM_API_KEY")
    getattr(settings, "EXTERNAL_" + name)
    os.environ["EXTERNAL_LLM_API_KEY"]
    getattr(settings, "DEBUG")  # fine: not the provider's
"""


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> dict[str, list[tuple[str, int]]]:
    if not SEMGREP.exists():
        pytest.skip("semgrep is installed by `make install` into .venv/semgrep")
    tree = tmp_path_factory.mktemp("semgrep")
    for where in ("apps/assistant/leak.py", "apps/routing/provider.py"):
        path = tree / where
        path.parent.mkdir(parents=True)
        path.write_text(BAD)
    rules = tree / "rules"
    shutil.copytree(ROOT / ".semgrep", rules)
    result = subprocess.run(
        [str(SEMGREP), "scan", "--config", str(rules), "--metrics=off",
         "--disable-version-check", "--no-git-ignore", "--json", "."],
        cwd=tree, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    found: dict[str, list[tuple[str, int]]] = {}
    for r in report["results"]:
        found.setdefault(r["check_id"].rsplit(".", 1)[-1], []).append(
            (r["path"], r["start"]["line"])
        )
    return found


def _lines(found: list[tuple[str, int]], path: str) -> set[int]:
    return {line for p, line in found if p == path}


def test_provider_sdks_are_imported_only_in_routing(findings):
    hits = findings["egress-client-outside-routing"]
    assert _lines(hits, "apps/assistant/leak.py") == {2, 3, 5}
    assert _lines(hits, "apps/routing/provider.py") == set()


def test_sql_built_from_strings_is_refused(findings):
    assert _lines(findings["raw-sql-with-interpolation"], "apps/assistant/leak.py") == {11, 12, 14}


def test_mark_safe_only_on_literals(findings):
    assert _lines(findings["mark-safe-on-a-variable"], "apps/assistant/leak.py") == {17}


def test_csrf_exempt_is_refused(findings):
    assert 20 in _lines(findings["no-csrf-exempt"], "apps/assistant/leak.py")


def test_provider_settings_are_read_only_in_routing(findings):
    hits = findings["provider-settings-outside-routing"]
    assert _lines(hits, "apps/assistant/leak.py") == {26, 27, 28, 29}
    # One place reads them, apps/routing/providers.py; the rest of routing does not either.
    assert _lines(hits, "apps/routing/provider.py") == {26, 27, 28, 29}
