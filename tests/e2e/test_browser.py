"""The three roles in a real browser (Debian's chromium driven by Playwright) against a
live server of the project, with the real Celery worker, vector store owner and llama.cpp
model server.

1. The knowledge admin signs in, drops a PDF, a DOCX and a Markdown file on the upload
   page's drop zone and watches each reach "Indexed".
2. The employee asks about them, sees the answer stream in with citations, opens one and
   lands on the highlighted passage; then asks for the stronger model on that answer
   (confidential documents) and reads why it stays local.
3. The compliance officer filters the audit trail to that conversation, exports it as
   CSV and verifies the chain.

A screenshot of each step is written to var/e2e/ (E2E_SCREENSHOT_DIR overrides it).
`make test` installs chromium first (`make browser`); without it the test skips, saying so.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from apps.core.labels import Label
from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Document
from tests.support import fixtures

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_worker", "live_llm"),
    pytest.mark.timeout(300),
]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# STACK.md: the flags that matter on this kind of machine.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUESTION = "How many days of leave a year do employees get?"
WAIT_MS = 180_000
STATUS_WORDS = {"queued", "Queued", "Parsing", "Embedding", "Indexed"}


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOT_DIR", ROOT / "var" / "e2e"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def people() -> dict[str, User]:
    readers = Group.objects.create(name="Handbook readers")
    users = {}
    for name, role, extra in [
        ("kim", KNOWLEDGE_ADMIN, []),
        ("eli", EMPLOYEE, [readers]),
        ("cora", COMPLIANCE_OFFICER, []),
    ]:
        user = User.objects.create_user(name, password=f"pw-{name}-e2e-1")
        user.groups.add(Group.objects.get(name=role), *extra)
        users[name] = user
    # New uploads take the collection's default: confidential (the default of defaults).
    services.collection_create(
        name="Handbook", actor=users["kim"], default_label=Label.CONFIDENTIAL, groups=[readers]
    )
    return users


def _sign_in(browser, base: str, name: str):  # noqa: ANN001, ANN202
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}-e2e-1")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    return context, page


def _drop_files(page, paths: list[Path]) -> None:  # noqa: ANN001
    """A real drop event on the drop zone, carrying the files in a DataTransfer."""
    payload = [{"name": p.name, "b64": base64.b64encode(p.read_bytes()).decode()} for p in paths]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name));
            }
            return dt;
        }""",
        payload,
    )
    for kind in ("dragenter", "dragover", "drop"):
        page.dispatch_event("#dropzone", kind, {"dataTransfer": transfer})


def test_admin_employee_and_compliance_officer_in_a_real_browser(
    live_server, browser, people, shots, fixture_dir
):
    started = time.monotonic()
    steps: dict[str, float] = {}
    base = live_server.url
    files = [
        fixtures.make_good_pdf(fixture_dir),
        fixtures.make_good_docx(fixture_dir),
        fixtures.make_markdown(fixture_dir),
    ]

    # 1. The knowledge admin drops three files and watches them reach "Indexed".
    context, page = _sign_in(browser, base, "kim")
    page.goto(f"{base}/knowledge/")
    _drop_files(page, files)
    page.wait_for_function("() => document.querySelectorAll('#upload-results li').length === 3")
    notes = page.locator("#upload-results li").all_inner_texts()
    # Each message follows its file's status (tests/e2e/test_upload.py).
    assert all(n.split(": ", 1)[1].split(" ")[0] in STATUS_WORDS for n in notes), notes
    page.wait_for_function(
        """() => {
            const spans = document.querySelectorAll('#documents tr[data-id] [data-role=status]');
            return spans.length === 3
                && [...spans].every((s) => s.classList.contains('status-indexed'));
        }""",
        timeout=WAIT_MS,
    )
    rows = page.locator("#documents tr[data-id] [data-role=status]").all_inner_texts()
    assert rows == ["Indexed"] * 3, rows
    page.screenshot(path=str(shots / "1-admin-upload-indexed.png"), full_page=True)
    steps["1 upload to indexed"] = time.monotonic() - started
    context.close()
    docs = list(Document.objects.all())
    assert {d.status for d in docs} == {"indexed"} and len(docs) == 3
    assert {d.label for d in docs} == {"confidential"}

    # 2. The employee asks, watches the answer stream in, follows a citation.
    context, page = _sign_in(browser, base, "eli")
    page.goto(f"{base}/chat/")
    # Count the text changes of the answer while it is still streaming.
    page.evaluate(
        """() => {
            window.__streamed = 0;
            new MutationObserver((records) => {
                for (const r of records) {
                    const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
                    if (el && el.closest('.streaming')) window.__streamed += 1;
                }
            }).observe(document.getElementById('chat-log'),
                       { childList: true, characterData: true, subtree: true });
        }"""
    )
    page.fill("textarea[name=question]", QUESTION)
    page.click("#ask-form button[type=submit]")
    answer = page.locator(".msg-assistant.status-complete").first
    answer.wait_for(timeout=WAIT_MS)
    assert page.evaluate("window.__streamed") > 3, "the answer arrived in one piece"
    cites = answer.locator("a.cite")
    assert cites.count() > 0, answer.inner_text()
    assert "Left the premises: no" in answer.inner_text()
    conversation = page.input_value("input[name=conversation]")
    assert conversation and conversation in page.url
    page.screenshot(path=str(shots / "2a-employee-answer-with-citations.png"), full_page=True)
    cites.first.click()
    page.wait_for_url("**/passages/**")
    mark = page.locator("mark#passage")
    mark.wait_for()
    assert mark.inner_text().strip()
    page.screenshot(path=str(shots / "2b-employee-cited-passage.png"), full_page=True)

    # ...and asks for the stronger model on that (confidential) answer.
    page.go_back()
    page.wait_for_url(f"**/chat/{conversation}/")
    page.locator("button.escalate").first.click()
    refusal = page.locator(".msg-assistant.status-kept_local")
    refusal.wait_for(timeout=60_000)
    text = refusal.inner_text()
    assert "stay on our servers" in text and "confidential" in text, text
    page.screenshot(path=str(shots / "2c-employee-stronger-model-refused.png"), full_page=True)
    steps["2 chat, citation, refusal"] = time.monotonic() - started - sum(steps.values())
    context.close()

    # 3. The compliance officer filters to the conversation, exports CSV, verifies.
    context, page = _sign_in(browser, base, "cora")
    page.goto(f"{base}/audit/")
    page.fill("input[name=conversation]", conversation)
    page.click("form.audit-filters button[type=submit]")
    page.wait_for_url(f"**conversation={conversation}**")
    listed = page.locator("table").first.inner_text()
    for action in ("chat.question", "chat.retrieval", "chat.answer", "routing.decision"):
        assert action in listed, (action, listed[:2000])
    assert "document.uploaded" not in listed  # only this conversation's events
    page.screenshot(path=str(shots / "3a-compliance-filtered.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("a:text-is('CSV')")
    download = download_info.value
    saved = shots / download.suggested_filename
    download.save_as(str(saved))
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert rows and all(conversation in ",".join(r.values()) for r in rows), rows[:3]
    page.goto(f"{base}/audit/verify/")
    page.click("#audit-verify-button")
    verdict = page.locator("#audit-verdict")
    verdict.wait_for()
    assert "Intact" in verdict.inner_text(), verdict.inner_text()
    page.screenshot(path=str(shots / "3b-compliance-chain-verified.png"), full_page=True)
    context.close()
    steps["3 audit filter, CSV, verify"] = time.monotonic() - started - sum(steps.values())
    timings = ", ".join(f"{name}: {seconds:.1f} s" for name, seconds in steps.items())
    print(f"browser journey {time.monotonic() - started:.1f} s ({timings}); screenshots: {shots}")


DEMO = ROOT / "apps" / "knowledge" / "demo"
# The three questions of issue 13, asked as a new employee of the demo company would, in
# one conversation; the third only makes sense after the first.
DEMO_QUESTIONS = [
    ("How many vacation days do I get?", "employee-handbook.md", ("27",)),
    ("What should I do on my first day?", "onboarding-guide.docx", ()),
    ("And can I carry them over to next year?", "employee-handbook.md", ("5", "31 March")),
]


def test_the_demo_questions_are_answered_with_the_evidence_first(live_server, browser, people):
    """The demo's handbook and onboarding guide, then the three questions in the browser:
    each answer opens with quotes from the right document (the number itself for the first),
    the follow-up is searched with the conversation and says so."""
    handbook = services.collection_create(
        name="Company handbook", actor=people["kim"], default_label=Label.INTERNAL,
        groups=list(people["eli"].groups.exclude(name=EMPLOYEE)),
    )  # fmt: skip
    from django.core.files.base import ContentFile

    from tests.conftest import wait_for_documents

    ids = []
    for name in ("employee-handbook.md", "onboarding-guide.docx"):
        doc, _ = services.document_create(
            collection=handbook,
            upload=ContentFile((DEMO / name).read_bytes(), name=name),
            user=people["kim"],
        )
        ids.append(doc.pk)
    docs = wait_for_documents(ids)
    assert {d.status for d in docs.values()} == {"indexed"}, docs
    titles = {d.original_name: d.title for d in docs.values()}

    context, page = _sign_in(browser, live_server.url, "eli")
    page.goto(f"{live_server.url}/chat/")
    for turn, (question, source, facts) in enumerate(DEMO_QUESTIONS):
        asked = time.monotonic()
        page.fill("textarea[name=question]", question)
        page.click("#ask-form button[type=submit]")
        box = page.locator(".msg-assistant").nth(turn)
        box.locator(".evidence-stream li, .evidence li").first.wait_for(timeout=WAIT_MS)
        evidence_s = time.monotonic() - asked
        done = page.locator(".msg-assistant:not(.status-streaming)").nth(turn)
        done.wait_for(timeout=WAIT_MS)
        quotes = done.locator(".evidence li")
        quoted = " ".join(quotes.all_inner_texts())
        assert quotes.count() >= 1, done.inner_text()
        for fact in facts:
            assert fact in quoted, (question, quoted)
        # A quote's link opens a passage of the document the answer is in.
        cited = {a.get_attribute("title") for a in done.locator(".evidence a.cite").all()}
        assert titles[source] in cited, (question, cited)
        print(f"{question!r}: evidence after {evidence_s:.1f} s")
    follow_up = page.locator(".msg-assistant").nth(2).locator(".searched").inner_text()
    assert "vacation" in follow_up.lower(), follow_up
    context.close()
