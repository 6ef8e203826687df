"""Prompt building, token counting, citations and answer rendering (no server needed)."""

from __future__ import annotations

from apps.assistant.citations import attribute, cited_numbers, extract_citations, render_answer
from apps.routing.prompt import SYSTEM_PROMPT, build_prompt
from apps.routing.tokens import count_message_tokens, count_tokens


def _passage(i: int, words: int = 40) -> dict:
    return {
        "chunk_id": f"c{i}",
        "document_id": i,
        "collection_id": 1,
        "title": f"Doc {i}",
        "section": "Part",
        "text": " ".join(f"word{i}x{j}" for j in range(words)),
        "page": None,
        "char_start": 0,
        "char_end": 10,
        "label": "internal",
        "score": 1.0 / i,
    }


def test_token_counts_come_from_the_models_tokenizer():
    # A word-piece count, not characters or words: a long rare word is several tokens.
    assert count_tokens("hello") == 1
    assert count_tokens("antidisestablishmentarianism") > 1
    assert count_tokens("hello " * 50) >= 50


def test_prompt_fits_the_window_and_keeps_the_best_passages_first():
    passages = [_passage(i) for i in range(1, 30)]
    prompt = build_prompt(
        question="What is word3x1?",
        passages=passages,
        history=[],
        count=count_message_tokens,
        context_window=1200,
        answer_tokens=300,
    )
    assert prompt.tokens <= 1200 - 300
    kept = [p["chunk_id"] for p in prompt.passages]
    assert 0 < len(kept) < len(passages)
    assert kept == [p["chunk_id"] for p in passages[: len(kept)]]
    assert [p["n"] for p in prompt.passages] == list(range(1, len(kept) + 1))
    assert prompt.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = prompt.messages[-1]["content"]
    assert user.endswith("Question: What is word3x1?")
    assert "[1] (Doc 1 › Part)" in user


def test_history_is_trimmed_oldest_first_and_old_citation_marks_dropped():
    history = []
    for i in range(40):
        history.append({"role": "user", "content": f"question number {i} " * 10})
        history.append({"role": "assistant", "content": f"answer number {i} [1] " * 10})
    prompt = build_prompt(
        question="And now?",
        passages=[_passage(1)],
        history=history,
        count=count_message_tokens,
        context_window=1500,
        answer_tokens=300,
    )
    assert prompt.tokens <= 1200
    earlier = prompt.messages[1:-1]
    assert 0 < len(earlier) < len(history)
    assert earlier[0]["role"] == "user"
    assert "question number 39" in earlier[-2]["content"]  # the newest turns survive
    assert all("[1]" not in m["content"] for m in earlier if m["role"] == "assistant")
    assert prompt.passages  # passages are never pushed out by history


def test_only_numbers_that_name_a_passage_become_citations():
    passages = [{**_passage(1), "n": 1}, {**_passage(2), "n": 2}]
    text = "First [2]. Then [1, 2]. Not this [9]. Again [2]."
    assert cited_numbers(text) == [2, 1, 9]
    assert [c["chunk_id"] for c in extract_citations(text, passages)] == ["c2", "c1"]


def test_sentences_restating_a_passage_are_attributed_to_it():
    passages = [
        {"n": 1, "text": "New employees get 25 vacation days per year."},
        {"n": 2, "text": "Hotel costs are reimbursed up to 180 EUR per night."},
    ]
    text = "New employees get 25 vacation days. Hotels are reimbursed up to 180 EUR. I like tea."
    out = attribute(text, passages)
    assert out == (
        "New employees get 25 vacation days [1]. Hotels are reimbursed up to 180 EUR [2]. "
        "I like tea."
    )


def test_model_output_cannot_put_markup_on_the_page():
    passages = [{"n": 1, "title": 'Doc "one" <b>', "text": "x"}]
    html = render_answer(
        "Hi <script>alert(1)</script> <img src=x onerror=alert(1)> [link](javascript:alert(1)) [1]",
        passages=passages,
        link=lambda n: f"/chat/answers/7/passages/{n}/",
    )
    assert "<script" not in html and "<img" not in html
    assert 'href="javascript' not in html  # the link stays text, never a link
    assert html.count("<a ") == 1  # only the citation is a link
    assert '<a class="cite" href="/chat/answers/7/passages/1/"' in html
    assert 'title="Doc &quot;one&quot; &lt;b&gt;"' in html


def test_a_decimal_point_does_not_end_a_sentence():
    passages = [
        {"n": 1, "text": "Revenue was 18.4 million pounds against a budget of 17.1 million."}
    ]
    out = attribute("Revenue was 18.4 million against a budget of 17.1 million. Fine.", passages)
    assert out == "Revenue was 18.4 million against a budget of 17.1 million [1]. Fine."
