"""The upload page in a real browser: the messages under the drop zone follow each file
to "Indexed", a new row gets its label selector and buttons without a reload, and a file
dropped again under the same name becomes version 2, which replaces the row."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from apps.core.labels import Label
from apps.core.roles import KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Document
from tests.e2e.test_browser import _drop_files, _sign_in, browser  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_worker"),
    pytest.mark.timeout(300),
]
WAIT_MS = 180_000
LAST_NOTE = "[...document.querySelectorAll('#upload-results li')].pop()?.textContent"


@pytest.fixture
def kim() -> User:
    user = User.objects.create_user("kim", password="pw-kim-e2e-1")
    user.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    services.collection_create(
        name="Handbook", actor=user, default_label=Label.CONFIDENTIAL, groups=[]
    )
    return user


def _file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "canteen.md"
    path.write_text(f"# Canteen\n\n{text}\n", encoding="utf-8")
    return path


def test_messages_follow_the_status_and_new_rows_work_without_reload(
    live_server,
    browser,  # noqa: F811 - the fixture imported above
    kim,
    tmp_path,
):
    context, page = _sign_in(browser, live_server.url, "kim")
    page.goto(f"{live_server.url}/knowledge/")
    _drop_files(page, [_file(tmp_path / "1", "The canteen opens at half past eleven.")])
    page.wait_for_function(
        f"() => /Indexed — \\d+ passages/.test({LAST_NOTE})",
        timeout=WAIT_MS,
    )
    [note] = page.locator("#upload-results li").all_inner_texts()
    assert note.startswith("canteen.md: Indexed — "), note
    first = Document.objects.get()

    # The row arrived by polling; its selector and buttons are the rendered rows' ones.
    row = page.locator(f'#documents tr[data-id="{first.pk}"]')
    assert row.locator("button", has_text="Re-ingest").count() == 1
    assert row.locator("button", has_text="Delete").count() == 1
    assert row.locator("select[name=label]").input_value() == "confidential"
    with page.expect_navigation():
        row.locator("select[name=label]").select_option("internal")
    first.refresh_from_db()
    assert first.label == Label.INTERNAL

    # The same name again, other content: version 2 replaces the row once it is indexed.
    _drop_files(page, [_file(tmp_path / "2", "The canteen now opens at noon.")])
    page.wait_for_function(
        f"() => /\\(version 2\\) — \\d+ passages/.test({LAST_NOTE})",
        timeout=WAIT_MS,
    )
    second = Document.objects.get(version=2)
    assert second.label == Label.INTERNAL  # kept from the version it replaces
    page.wait_for_function(
        f"() => !document.querySelector('#documents tr[data-id=\"{first.pk}\"]')",
        timeout=30_000,
    )
    rows = page.locator("#documents tr[data-id]")
    assert rows.count() == 1
    assert rows.first.locator("a", has_text="version 2").get_attribute("href") == (
        f"/knowledge/documents/{second.pk}/versions/"
    )
    context.close()
