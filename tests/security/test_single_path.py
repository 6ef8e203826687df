"""Attack: a second way to the provider that the single-path check does not see (issue 15,
item 8). The check (tests/support/single_path.py, run on the project by
tests/security/test_gate.py, and as a semgrep rule by `make lint`) must flag every
spelling of a read of the provider's settings outside apps/routing, not only
`settings.EXTERNAL_…`."""

from __future__ import annotations

import pytest

from tests.support.single_path import offences, project_offences

READS = {
    "attribute": "from django.conf import settings\nkey = settings.EXTERNAL_LLM_API_KEY\n",
    "getattr": 'key = getattr(settings, "EXTERNAL_LLM_API_KEY")\n',
    "getattr with a default": 'key = getattr(settings, "EXTERNAL_LLM_BASE_URL", "")\n',
    "getattr, name built": 'key = getattr(settings, f"EXTERNAL_LLM_{part}")\n',
    "getattr, name joined": 'key = getattr(settings, "EXTERNAL" + "_LLM_API_KEY")\n',
    "getattr, name from a variable": "key = getattr(settings, name)\n",
    "settings.__dict__": 'key = settings.__dict__["EXTERNAL_LLM_API_KEY"]\n',
    "environment": 'import os\nkey = os.environ["EXTERNAL_LLM_API_KEY"]\n',
    "getenv": 'import os\nkey = os.getenv("EXTERNAL_LLM_API_KEY")\n',
    "an SDK": "import openai\n",
    "an SDK at run time": 'import importlib\nsdk = importlib.import_module("anthropic")\n',
}


@pytest.mark.parametrize("spelling", sorted(READS))
def test_the_single_path_check_flags_every_spelling_of_a_provider_read(spelling):
    assert list(offences(READS[spelling])), f"{spelling} was not flagged"


def test_getattr_on_settings_names_the_variable_it_reads():
    [found] = offences('x = getattr(settings, "EXTERNAL_LLM_API_KEY")\n', "apps/audit/x.py")
    assert found == "apps/audit/x.py:1: reads EXTERNAL_LLM_API_KEY through getattr"


def test_what_is_not_a_provider_read_passes():
    fine = (
        '"""Mentions EXTERNAL_LLM_API_KEY in prose only."""\n'
        "from django.conf import settings\n"
        'debug = getattr(settings, "DEBUG")\n'
        'label = "External model"\n'
    )
    assert list(offences(fine)) == []


def test_the_project_reads_provider_settings_in_routing_only():
    assert project_offences() == []
