"""The chat page while the local model serves others, in a real browser: the question's
place in the model's line shows at once (the place is taken before the search), moves up,
and gives way to the answer. The model's only slot and a place before ours are held from
the test through the real queue in Redis (tests/support/model_queue.py), the one the live
server's chat uses."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile

from apps.core.labels import Label
from apps.core.roles import EMPLOYEE
from apps.knowledge import services
from tests.conftest import wait_for_documents
from tests.e2e.test_browser import _sign_in, browser  # noqa: F401 - a fixture
from tests.support.model_queue import model_queue_taken

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_worker", "live_llm"),
    pytest.mark.timeout(300),
]
WAIT_MS = 180_000
HANDBOOK = (
    "# Vacation\n\nEvery employee gets 25 vacation days per year. Requests go to your "
    "manager at least two weeks ahead.\n"
)
PLACE = "document.querySelector('.msg-assistant .queue-position')?.textContent || ''"


@pytest.fixture
def eli() -> User:
    readers = Group.objects.create(name="Handbook readers")
    user = User.objects.create_user("eli", password="pw-eli-e2e-1")
    user.groups.add(Group.objects.get(name=EMPLOYEE), readers)
    collection = services.collection_create(
        name="Handbook", actor=None, default_label=Label.INTERNAL, groups=[readers]
    )
    doc, _ = services.document_create(
        collection=collection, upload=ContentFile(HANDBOOK.encode(), name="vacation.md"), user=None
    )
    assert wait_for_documents([doc.pk])[doc.pk].status == "indexed"
    return user


def test_the_place_in_the_model_queue_shows_moves_up_and_gives_way_to_the_answer(
    live_server,
    browser,  # noqa: F811 - the fixture imported above
    eli,
):
    context, page = _sign_in(browser, live_server.url, "eli")
    page.goto(f"{live_server.url}/chat/")
    with model_queue_taken(waiting=1) as taken:  # one answering, one in line before us
        page.fill("textarea[name=question]", "How many vacation days do I get?")
        page.click("#ask-form button[type=submit]")
        page.wait_for_function(f"() => ({PLACE}).includes('1 ahead')", timeout=30_000)
        assert page.locator("#ask-status").inner_text() == "Waiting for the model: 1 ahead."
        # The evidence, once the search is done, comes above the place, which stays
        # next to where the answer's words will come.
        box = page.locator(".msg-assistant").first
        box.locator(".evidence-stream").wait_for(timeout=WAIT_MS)
        order = box.evaluate("b => [...b.children].map((c) => c.className)")
        assert order.index("evidence-stream") < order.index("msg-meta queue-position"), order
        assert order[-1].startswith("msg-body"), order
        taken.queue.leave(taken.holders[0])  # that answer ends; the one before us is served
        page.wait_for_function(f"() => ({PLACE}).includes('you are next')", timeout=30_000)
        taken.queue.leave(taken.waiters[0])  # its answer ends: our turn
        answer = page.locator(".msg-assistant.status-complete")
        answer.wait_for(timeout=WAIT_MS)
    assert page.locator(".queue-position").count() == 0  # gone once the words came
    assert "25" in answer.inner_text()
    assert page.locator("#ask-status").inner_text() == ""
    context.close()
