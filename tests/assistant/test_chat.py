"""Asking questions end to end: real worker, vector store owner and llama.cpp server."""

from __future__ import annotations

import hashlib
import json
import signal

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.urls import reverse

from apps.assistant import services as chat
from apps.assistant.models import Message
from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events
from apps.core.labels import Label
from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE
from apps.knowledge import services
from apps.routing.model_queue import BUSY
from tests.conftest import restart_llm, wait_for_documents
from tests.support.llm import RecordingProxy
from tests.support.model_queue import model_queue_taken

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live_worker", "live_llm"),
]

VACATION = (
    "# Vacation policy\n\n## Vacation days\n\n"
    "New employees get 25 vacation days per year. Unused vacation days can be carried over "
    "until March 31 of the next year. Vacation requests go to your manager at least two "
    "weeks ahead.\n"
)
BLUEBIRD = (
    "# Project Bluebird\n\n## Budget\n\n"
    "The Bluebird acquisition budget is 4.2 million euros, approved by the board in May. "
    "Vacation for the Bluebird team is frozen until the deal closes.\n"
)


def _employee(name: str, *groups: Group) -> User:
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    user.groups.add(Group.objects.get(name=EMPLOYEE), *groups)
    return user


def _ingest(name: str, group: Group, filename: str, body: str, label: str):
    collection = services.collection_create(
        name=name, actor=None, default_label=label, groups=[group]
    )
    doc, _ = services.document_create(
        collection=collection, upload=ContentFile(body.encode(), name=filename), user=None
    )
    return collection, doc


@pytest.fixture
def world():
    """Two groups, one collection each, and one employee in each (plus one in none)."""
    hr, deals = Group.objects.create(name="HR readers"), Group.objects.create(name="Deal team")
    hr_coll, hr_doc = _ingest("Handbook", hr, "vacation.md", VACATION, Label.INTERNAL)
    deal_coll, deal_doc = _ingest("Deals", deals, "bluebird.md", BLUEBIRD, Label.CONFIDENTIAL)
    docs = wait_for_documents([hr_doc.pk, deal_doc.pk])
    assert {d.status for d in docs.values()} == {"indexed"}, docs
    return {
        "alice": _employee("alice", hr),
        "bob": _employee("bob", deals),
        "carol": _employee("carol"),
        "hr": hr,
        "hr_doc": docs[hr_doc.pk],
        "deal_doc": docs[deal_doc.pk],
        "hr_coll": hr_coll,
        "deal_coll": deal_coll,
    }


def _ask(client, user: User, question: str, conversation: str = "") -> list[tuple[str, dict]]:
    client.force_login(user)
    resp = client.post(
        reverse("assistant:ask"), {"question": question, "conversation": conversation}
    )
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"].startswith("text/event-stream")
    body = b"".join(resp.streaming_content).decode()
    events = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def _done(events) -> dict:
    done = [data for kind, data in events if kind == "done"]
    assert len(done) == 1, events
    return done[0]


def _events(action: str, conversation_id: str) -> list[AuditEvent]:
    # Opened: the personal fields are sealed under the asker's key (apps.audit.personal).
    return reveal_events(
        AuditEvent.objects.filter(action=action, conversation_id=conversation_id).order_by("id")
    )


def test_answer_streams_and_cites_only_chunks_that_were_in_the_prompt(client, world):
    events = _ask(client, world["alice"], "How many vacation days do new employees get?")
    tokens = [data["text"] for kind, data in events if kind == "token"]
    assert len(tokens) > 3  # streamed piece by piece, not in one block
    done = _done(events)
    assert done["status"] == "complete", done
    reply = Message.objects.get(pk=done["message_id"])
    assert reply.content.startswith("".join(tokens)[:20])
    assert reply.model_where == "local" and "SmolLM2" in reply.model_display

    retrieved = _events("chat.retrieval", done["conversation_id"])[0].details["chunks"]
    retrieved_ids = {c["chunk_id"] for c in retrieved}
    prompt_ids = {p["chunk_id"] for p in reply.passages}
    assert prompt_ids and prompt_ids <= retrieved_ids
    assert reply.citations, reply.content
    for citation in reply.citations:
        assert citation["chunk_id"] in prompt_ids
        assert citation["document_id"] == world["hr_doc"].pk
    # The page shows the answer with each [n] linked to its passage...
    n = reply.citations[0]["n"]
    link = reverse("assistant:passage", args=[reply.pk, n])
    assert f'href="{link}"' in done["html"]
    page = client.get(link)
    assert page.status_code == 200
    # ...and the link lands on the cited text, highlighted.
    passage = next(p for p in reply.passages if p["n"] == n)
    text = world["hr_doc"].text[passage["char_start"] : passage["char_end"]]
    assert "25 vacation days" in text
    assert f'<mark id="passage">{text}' in page.content.decode()

    # The chain from question to citations is in the audit trail, in order.
    actions = [
        e.action
        for e in AuditEvent.objects.filter(conversation_id=done["conversation_id"]).order_by("id")
    ]
    assert actions == ["chat.question", "chat.retrieval", "llm.call", "chat.answer"]
    llm = _events("llm.call", done["conversation_id"])[0].details
    assert llm["where"] == "local" and len(llm["payload_sha256"]) == 64
    assert llm["completion_tokens"] > 0


def test_the_local_call_is_audited_with_the_hash_of_the_bytes_the_model_server_received(
    client, world, live_llm, settings
):
    with RecordingProxy(upstream=live_llm["base_url"]) as proxy:
        settings.LOCAL_LLM_BASE_URL = proxy.base_url
        done = _done(_ask(client, world["alice"], "How many vacation days do new employees get?"))
    assert done["status"] == "complete", done
    [received] = proxy.bodies
    assert b"25 vacation days" in received  # the prompt went through the proxy
    llm = _events("llm.call", done["conversation_id"])[0].details
    assert llm["where"] == "local"
    assert llm["payload_sha256"] == hashlib.sha256(received).hexdigest()


def test_a_user_never_receives_anything_from_another_groups_collections(client, world):
    events = _ask(client, world["bob"], "How many vacation days do new employees get?")
    done = _done(events)
    raw = json.dumps(events)
    assert "25 vacation days" not in raw and "vacation.md" not in raw
    for chunk in _events("chat.retrieval", done["conversation_id"])[0].details["chunks"]:
        assert chunk["collection_id"] == world["deal_coll"].pk
    reply = Message.objects.get(pk=done["message_id"])
    assert all(p["collection_id"] == world["deal_coll"].pk for p in reply.passages)
    # Bob cannot open Alice's answers' passages either.
    alice_events = _ask(client, world["alice"], "How many vacation days do new employees get?")
    alice_reply = _done(alice_events)["message_id"]
    client.force_login(world["bob"])
    assert client.get(reverse("assistant:passage", args=[alice_reply, 1])).status_code == 404


def test_a_user_without_collections_is_told_no_documents_are_available(client, world):
    events = _ask(client, world["carol"], "How many vacation days do new employees get?")
    done = _done(events)
    reply = Message.objects.get(pk=done["message_id"])
    assert reply.content == chat.NO_COLLECTIONS
    assert reply.passages == [] and reply.status == "no_context"
    assert not [kind for kind, _ in events if kind == "token"]
    assert _events("llm.call", done["conversation_id"]) == []  # the model was not asked


def test_revoking_a_group_takes_effect_on_the_next_question(client, world):
    first = _done(_ask(client, world["alice"], "How many vacation days do new employees get?"))
    reply = Message.objects.get(pk=first["message_id"])
    assert reply.passages
    world["alice"].groups.remove(world["hr"])
    second = _done(
        _ask(
            client,
            world["alice"],
            "How many vacation days do new employees get?",
            conversation=first["conversation_id"],
        )
    )
    assert Message.objects.get(pk=second["message_id"]).content == chat.NO_COLLECTIONS
    # The old answer's citation no longer opens either.
    link = reverse("assistant:passage", args=[reply.pk, reply.passages[0]["n"]])
    assert client.get(link).status_code == 404


def test_model_server_down_gives_a_clear_message_and_keeps_the_question(client, world, live_llm):
    live_llm["proc"].send_signal(signal.SIGKILL)
    live_llm["proc"].wait(timeout=10)
    try:
        events = _ask(client, world["alice"], "How many vacation days do new employees get?")
    finally:
        restart_llm(live_llm)
    done, fallback = [data for kind, data in events if kind == "done"]
    assert done["status"] == "failed"
    assert "not reachable" in done["error"] and "question is kept" in done["error"]
    # The stronger model would be next, but none is configured here: said, nothing sent.
    assert fallback["status"] == "kept_local"
    assert "No external model is configured" in fallback["html"]
    conversation = done["conversation_id"]
    assert Message.objects.filter(
        conversation_id=conversation, role="user", content__startswith="How many vacation"
    ).exists()
    llm = _events("llm.call", conversation)[0].details
    assert llm["outcome"] == "failed" and "not reachable" in llm["error"]


def test_feedback_is_stored_and_audited(client, world):
    done = _done(_ask(client, world["alice"], "How many vacation days do new employees get?"))
    url = reverse("assistant:feedback", args=[done["message_id"]])
    assert client.post(url, {"value": "sideways"}).status_code == 400
    assert client.post(url, {"value": "down"}).status_code == 200
    assert Message.objects.get(pk=done["message_id"]).feedback == -1
    event = _events("chat.feedback", done["conversation_id"])[0]
    assert event.details["value"] == "down" and event.actor_username == "alice"
    client.force_login(world["bob"])  # not his answer
    assert client.post(url, {"value": "up"}).status_code == 404


def test_an_overlong_question_is_refused_with_the_limit(client, world, settings):
    settings.QUESTION_MAX_CHARS = 50
    client.force_login(world["alice"])
    resp = client.post(reverse("assistant:ask"), {"question": "x" * 51})
    assert resp.status_code == 400
    assert "the limit is 50" in resp.json()["error"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("role", ["anonymous", "compliance"])
def test_chat_pages_are_for_people_who_may_use_the_assistant(client, role):
    if role == "compliance":
        user = User.objects.create_user("cora", password="pw-cora-1")
        user.groups.add(Group.objects.get(name=COMPLIANCE_OFFICER))
        client.force_login(user)
    for url in (reverse("assistant:chat"), reverse("assistant:ask")):
        resp = client.get(url) if url.endswith("/chat/") else client.post(url, {"question": "hi"})
        if role == "anonymous":
            assert resp.status_code == 302 and "/login/" in resp["Location"]
        else:
            assert resp.status_code == 403


def test_the_evidence_is_quoted_before_the_models_first_word(client, world):
    events = _ask(client, world["alice"], "How many days of holiday do I get a year?")
    kinds = [kind for kind, _ in events]
    assert "evidence" in kinds, kinds
    first_token = kinds.index("token") if "token" in kinds else len(kinds)
    assert kinds.index("meta") < kinds.index("evidence") < first_token
    evidence = next(data for kind, data in events if kind == "evidence")
    quoted = [s["text"] for s in evidence["sentences"]]
    assert any("25 vacation days per year" in q for q in quoted), quoted
    # Verbatim from the document, and linked to the passage it is from.
    for s in evidence["sentences"]:
        assert " ".join(s["text"].split()) in " ".join(world["hr_doc"].text.split())
    done = _done(events)
    reply = Message.objects.get(pk=done["message_id"])
    link = reverse("assistant:passage", args=[reply.pk, evidence["sentences"][0]["n"]])
    assert f'href="{link}"' in evidence["html"] and f'href="{link}"' in done["html"]
    # The model's sentences were checked against the passages, and the counts audited.
    assert reply.grounding["sentences"] >= reply.grounding["supported"] >= 0
    answer = _events("chat.answer", done["conversation_id"])[0].details
    assert answer["grounding"]["sentences"] == reply.grounding["sentences"]
    assert answer["grounding"]["verdict"] in ("kept", "evidence_only")
    assert [e["chunk_id"] for e in answer["evidence"]] == [e["chunk_id"] for e in reply.evidence]


def test_a_follow_up_is_searched_with_the_conversation_and_says_so(client, world):
    first = _done(_ask(client, world["alice"], "How many vacation days do new employees get?"))
    events = _ask(
        client, world["alice"], "And until when can I carry them over?", first["conversation_id"]
    )
    searched = [data["query"] for kind, data in events if kind == "searched"]
    assert len(searched) == 1 and "vacation" in searched[0], events
    done = _done(events)
    assert done["status"] != "no_context", done
    quoted = " ".join(
        s["text"] for kind, data in events if kind == "evidence" for s in data["sentences"]
    )
    assert "March 31" in quoted, quoted
    asked = Message.objects.get(pk=done["message_id"]).reply_to
    assert asked.search_query == searched[0]
    retrieval = _events("chat.retrieval", done["conversation_id"])[-1].details
    assert retrieval["searched_for"] == searched[0]
    assert retrieval["queries_tried"][0] == searched[0]  # only one earlier question here
    # The page shows it after a reload too.
    page = client.get(
        reverse("assistant:conversation", args=[done["conversation_id"]])
    ).content.decode()
    assert "Searched for: " in page


def test_a_follow_up_may_lean_on_a_question_before_the_last(client, world):
    first = _done(_ask(client, world["alice"], "How many vacation days do new employees get?"))
    conversation = first["conversation_id"]
    _done(_ask(client, world["alice"], "Who do vacation requests go to?", conversation))
    events = _ask(client, world["alice"], "And can I carry them over to next year?", conversation)
    retrieval = _events("chat.retrieval", conversation)[-1].details
    assert len(retrieval["queries_tried"]) == 2, retrieval
    quoted = " ".join(
        s["text"] for kind, data in events if kind == "evidence" for s in data["sentences"]
    )
    assert "carried over" in quoted, quoted


def test_a_question_the_documents_do_not_answer_is_refused_with_what_was_searched(client, world):
    events = _ask(client, world["alice"], "What is the bug bounty payout for a critical bug?")
    done = _done(events)
    assert done["status"] == "no_context", done
    assert not [kind for kind, _ in events if kind in ("token", "evidence")]
    reply = Message.objects.get(pk=done["message_id"])
    assert "Searched for: “What is the bug bounty payout for a critical bug?”" in reply.content
    assert "“vacation”" in reply.content  # the nearest document the asker can read (its title)
    assert "Bluebird" not in reply.content  # never a title the asker cannot read


def _blocks(resp):
    """Each server-sent event of a chat stream as it comes: (kind, data)."""
    for chunk in resp.streaming_content:
        lines = dict(line.split(": ", 1) for line in chunk.decode().splitlines() if ": " in line)
        if "event" in lines:
            yield lines["event"], json.loads(lines["data"])


def test_a_waiting_question_shows_its_place_before_the_search_and_as_it_moves_up(client, world):
    client.force_login(world["alice"])
    searched_before_the_place = None
    with model_queue_taken(waiting=2) as taken:  # one answering, Bob and Carol in line
        (bob, carol), (holder,) = taken.waiters, taken.holders
        resp = client.post(
            reverse("assistant:ask"), {"question": "How many vacation days do new employees get?"}
        )
        assert resp.status_code == 200
        events = []
        for kind, data in _blocks(resp):  # the stream runs as far as it is read
            events.append((kind, data))
            if kind != "queue":
                continue
            if searched_before_the_place is None:  # the first thing the page hears
                searched_before_the_place = bool(_events("chat.retrieval", data["conversation_id"]))
            if data["ahead"] == 2:
                taken.queue.leave(carol)  # Carol gives up
            elif data["ahead"] == 1:
                taken.queue.leave(holder)  # that answer ends: Bob's turn
                assert taken.queue.poll(bob) is None
            elif data["ahead"] == 0:
                taken.queue.leave(bob)  # Bob's answer ends: Alice's turn
    kinds = [kind for kind, _ in events]
    places = [data for kind, data in events if kind == "queue"]
    assert [p["ahead"] for p in places] == [2, 1, 0], places
    assert places[0]["text"] == "Waiting for the model: 2 ahead."
    assert places[2]["text"] == "Waiting for the model: you are next."
    # The place first, before the search has run; then the evidence, the place again as
    # it moves up, then the model's words.
    assert kinds[0] == "queue" and searched_before_the_place is False, kinds
    last_place = len(kinds) - 1 - kinds[::-1].index("queue")
    assert kinds.index("meta") < kinds.index("evidence") < last_place < kinds.index("token")
    assert _events("chat.retrieval", events[0][1]["conversation_id"])  # searched meanwhile
    assert _done(events)["status"] == "complete"


def test_a_question_that_finds_the_queue_full_is_busy_at_once_without_a_search(world, settings):
    # The view refuses a full queue before the stream (above); two questions may still
    # pass its look together, and the one that finds the last place gone is told here.
    settings.MODEL_QUEUE_MAX_LENGTH = 1
    alice = world["alice"]
    conversation = chat.conversation_create(user=alice)
    with model_queue_taken(waiting=1) as taken:
        events = [
            (e.kind, e.data)
            for e in chat.ask(
                user=alice, conversation=conversation, question="How many vacation days?"
            )
        ]
        assert taken.queue.state().waiting == 1  # it took no place
    assert [kind for kind, _ in events] == ["meta", "done"]
    done = events[-1][1]
    assert done["status"] == "failed" and done["error"] == BUSY and done["retry_after"] == 60
    trail = AuditEvent.objects.filter(conversation_id=str(conversation.pk)).order_by("id")
    # Asked, the model not called (its error), answered busy: nothing was searched.
    assert [e.action for e in trail] == ["chat.question", "llm.call", "chat.answer"]
    call = reveal_events(trail.filter(action="llm.call"))[0].details
    assert call["error"] == BUSY and call["payload_sha256"] == ""
    asked = Message.objects.get(conversation=conversation, role="user")
    assert asked.retrieved == []
    reply = Message.objects.get(pk=done["message_id"])
    assert reply.status == "failed" and reply.error == BUSY and reply.passages == []


@pytest.mark.parametrize(
    ("who", "question"),
    [
        ("alice", "What is the bug bounty payout for a critical bug?"),  # nothing relevant
        ("carol", "How many vacation days do new employees get?"),  # no collections
    ],
)
def test_a_question_with_nothing_for_the_model_gives_its_place_back(client, world, who, question):
    with model_queue_taken() as taken:
        events = _ask(client, world[who], question)
        assert taken.queue.state().waiting == 0  # given back while the model is still busy
    assert events[0][0] == "queue" and events[0][1]["ahead"] == 0
    done = _done(events)
    assert done["status"] == "no_context", done
    assert "token" not in [kind for kind, _ in events]


def test_a_full_model_queue_refuses_the_question_before_the_stream_with_retry_after(
    client, world, settings
):
    settings.MODEL_QUEUE_MAX_LENGTH = 1
    client.force_login(world["alice"])
    with model_queue_taken(waiting=1):
        resp = client.post(reverse("assistant:ask"), {"question": "How many vacation days?"})
    assert resp.status_code == 503
    assert resp["Retry-After"] == "60"
    assert resp.json()["error"] == BUSY == "The model is busy; try again in a minute."
    assert not Message.objects.exists()  # not asked: nothing to lose


def test_a_question_that_waits_too_long_ends_its_stream_busy_and_is_not_escalated(
    client, world, settings
):
    settings.MODEL_QUEUE_MAX_WAIT_SECONDS = 0.5
    with model_queue_taken() as taken:
        events = _ask(client, world["alice"], "How many vacation days do new employees get?")
        assert taken.queue.state().waiting == 0  # its place was given back
    kinds = [kind for kind, _ in events]
    assert "evidence" in kinds and "queue" in kinds and "token" not in kinds
    done = _done(events)  # one answer: a busy model is no reason to go elsewhere
    assert done["status"] == "failed" and done["error"] == BUSY
    assert done["retry_after"] == 60
    assert kinds[-1] == "done"
