"""The parts of a good answer on their own: sentences, follow-up queries, evidence,
abstention, the grounding check and how a checked answer is shown. The embedding model
is the real one; no database is needed except where a Message is rendered."""

from __future__ import annotations

import pytest

from apps.assistant import evidence, grounding
from apps.assistant.followup import depends_on_conversation, search_queries, search_query
from apps.assistant.models import Message
from apps.assistant.presenters import EVIDENCE_ONLY, UNSUPPORTED_MARK, answer_html, reply_text
from apps.assistant.sentences import numbers, spans
from apps.retrieval.embeddings import embed_query

LEAVE = {
    "chunk_id": "c-leave",
    "document_id": 1,
    "title": "Employee Handbook",
    "section": "Annual leave",
    "text": (
        "- Every full-time employee gets **27 days of annual leave** a year plus the 8 UK bank\n"
        "  holidays. Part-time colleagues get the same, pro rata.\n"
        "- The leave year runs from 1 January to 31 December.\n"
        "- You may carry over up to **5 unused days**; they must be taken by 31 March of the\n"
        "  following year or they are lost.\n"
    ),
}
TRAVEL = {
    "chunk_id": "c-travel",
    "document_id": 2,
    "title": "Employee Handbook",
    "section": "Travel and expenses",
    "text": (
        "All business travel is booked through TravelDesk at least 14 days ahead where "
        "possible. Trips abroad need your director's approval before booking. Submit "
        "expenses in Ledgerly within 30 days of spending the money."
    ),
}
FIRST_DAY = {
    "chunk_id": "c-first",
    "document_id": 3,
    "title": "Onboarding Guide for New Starters",
    "section": "Your first day",
    "text": (
        "Arrive at reception at 09:00 and ask for your buddy. IT hands you your laptop "
        "and badge before lunch. In the afternoon you meet your manager to agree your "
        "goals for the first month."
    ),
}


def test_list_items_and_sentences_are_units_with_their_own_words():
    units = [s.text for s in spans(LEAVE["text"])]
    assert units[0].startswith("Every full-time employee gets 27 days of annual leave")
    assert "**" not in units[0] and not units[0].startswith("-")
    assert any(u.startswith("The leave year runs") for u in units)
    assert len(units) == 4
    # Offsets point at the unit in the passage.
    first = spans(LEAVE["text"])[0]
    assert "27 days" in LEAVE["text"][first.start : first.end]


def test_a_faq_question_is_quoted_with_its_answer():
    faq = {
        "title": "FAQ",
        "section": "",
        "text": "How long does the battery last? About 9 hours "
        "of normal work. How long does charging take? 55 minutes.",
    }
    found = _gather("How many hours will the battery keep going?", [faq])
    assert found.quotes[0].text == "How long does the battery last? About 9 hours of normal work."


def test_numbers_ignore_thousands_separators():
    assert numbers("pays out $10,598 within 30 days") == {"10598", "30"}


@pytest.mark.parametrize(
    ("question", "follows"),
    [
        ("And can I carry them over to next year?", True),
        ("What about part-time staff?", True),
        ("How much is it?", True),
        ("Why?", True),
        ("How many vacation days do I get?", False),
        ("What should I do on my first day?", False),
        ("Who approves expense claims over £1,000?", False),
    ],
)
def test_a_question_that_leans_on_the_conversation_is_recognised(question, follows):
    assert depends_on_conversation(question) is follows


def test_a_follow_up_is_searched_with_the_previous_questions_words():
    query = search_query("And can I carry them over?", ["How many vacation days do I get?"])
    assert query.rewritten
    assert query.text.startswith("And can I carry them over?")
    assert "vacation" in query.text and "days" in query.text
    # A standalone question, or a first question, is searched as it is.
    alone = search_query("How many vacation days do I get?", [])
    assert alone.text == "How many vacation days do I get?" and not alone.rewritten
    other = search_query("Who approves expense claims?", ["How many vacation days do I get?"])
    assert other.text == "Who approves expense claims?" and not other.rewritten


def test_a_follow_up_is_tried_with_each_of_the_last_three_questions_most_recent_first():
    earlier = ["Who is my buddy?", "How many vacation days do I get?", "What is the VPN?",
               "Where do I book trips?"]  # fmt: skip
    tried = [q.text for q in search_queries("And can I carry them over?", earlier)]
    assert len(tried) == 3
    assert "book trips" in tried[0] and "VPN" in tried[1] and "vacation" in tried[2]
    assert search_queries("How do I book a trip?", earlier)[0].text == "How do I book a trip?"


def _gather(question, passages):
    return evidence.gather(question, embed_query(question), passages)


def test_the_best_sentence_is_quoted_even_in_other_words_than_the_documents():
    found = _gather("How many vacation days do I get?", [TRAVEL, LEAVE, FIRST_DAY])
    assert found.quotes, found.sentences[:3]
    [leave] = [q for q in found.quotes if "27 days of annual leave" in q.text]
    assert leave.n == 2  # the passage's place in the search results
    assert len(found.quotes) <= evidence.DEFAULT_WEIGHTS.quotes
    assert evidence.answerable(found)


def test_a_question_the_passages_do_not_answer_is_not_answerable():
    found = _gather("How much does the bug bounty programme pay out?", [TRAVEL, LEAVE, FIRST_DAY])
    assert not evidence.answerable(found), found.sentences[:3]


def test_the_model_reads_the_best_sentences_with_their_neighbours_not_whole_chunks():
    long_day = {
        **FIRST_DAY,
        "text": "Welcome to Northwind. "
        + FIRST_DAY["text"]
        + " On Friday the team takes you out for lunch.",
    }
    found = _gather("Who gives me my laptop?", [TRAVEL, long_day])
    weights = evidence.EvidenceWeights(context_passages=1, context_sentences=1)
    found = evidence.Evidence(evidence.ranked(found.sentences, weights), weights)
    [(n, text)] = evidence.context_texts(found, [TRAVEL, long_day])
    assert n == 2
    assert text == (
        "Arrive at reception at 09:00 and ask for your buddy. IT hands you your laptop and "
        "badge before lunch. In the afternoon you meet your manager to agree your goals for "
        "the first month."
    )  # the best sentence and one neighbour each side; not the first or last sentence


def _numbered(*passages):
    return [{**p, "n": n} for n, p in enumerate(passages, 1)]


def test_sentences_the_passages_support_pass_the_check_and_invented_ones_do_not():
    given = _numbered(LEAVE, TRAVEL)
    good = grounding.check(
        "Full-time employees get 27 days of annual leave a year [1]. "
        "You can carry over up to 5 unused days [1].",
        given,
    )
    assert (good.sentences, good.supported, good.unsupported) == (2, 2, [])
    assert good.verdict == "kept"
    bad = grounding.check(
        "Full-time employees get 27 days of annual leave [1]. "
        "After 5 years you can take up to 3 extra days abroad [1]. "
        "The bug bounty pays out $10,598 [2].",
        given,
    )
    assert bad.sentences == 3 and bad.unsupported == [1, 2], bad
    assert bad.verdict == "evidence_only"
    # A number changed is a different fact, whatever the other words say.
    changed = grounding.check("Full-time employees get 29 days of annual leave a year [1].", given)
    assert changed.unsupported == [0]


def test_sentences_that_claim_nothing_are_not_counted():
    check = grounding.check("Yes. See [1].", _numbered(LEAVE))
    assert check.sentences == 0 and check.verdict == "kept"


def _answer(content, evidence_items, check):
    return Message(
        pk=7,
        role=Message.Role.ASSISTANT,
        content=content,
        passages=_numbered(LEAVE),
        evidence=evidence_items,
        grounding=check.as_dict(),
    )


QUOTE = [
    {
        "text": "Every full-time employee gets 27 days of annual leave a year.",
        "n": 1,
        "chunk_id": "c-leave",
        "document_id": 1,
        "title": "Employee Handbook",
        "score": 1.0,
    }
]


def test_an_unsupported_sentence_is_shown_marked():
    content = "You get 27 days of annual leave [1]. After 5 years you also get 3 days abroad [1]."
    check = grounding.check(content, _numbered(LEAVE))
    assert check.unsupported == [1]
    message = _answer(content, QUOTE, check)
    text = reply_text(message)
    assert text.startswith(QUOTE[0]["text"])
    assert "3 days abroad [1]. (not found in the documents)" in text
    html = answer_html(message)
    assert html.index("27 days of annual leave a year.") < html.index("You get 27 days")
    assert "not found in the documents" in html
    assert UNSUPPORTED_MARK.strip() not in html  # rendered, not shown as markdown


def test_when_most_of_the_answer_is_unsupported_the_evidence_stands_alone():
    content = "After 5 years you get 3 days abroad. The bug bounty pays $10,598."
    check = grounding.check(content, _numbered(LEAVE))
    message = _answer(content, QUOTE, check)
    assert check.verdict == "evidence_only"
    assert reply_text(message) == QUOTE[0]["text"] + "\n" + EVIDENCE_ONLY
    assert "10,598" not in answer_html(message)


def test_evidence_is_escaped_not_rendered():
    hostile = [
        {**QUOTE[0], "text": '<img src="https://attacker.example/x"> [see](https://a.example)'}
    ]
    html = answer_html(_answer("", hostile, grounding.Check()))
    assert "<img" not in html and 'href="https://a.example"' not in html
    assert "&lt;img" in html
