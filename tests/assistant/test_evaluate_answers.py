"""`manage.py evaluate_answers`: the whole-word match, the question file, the corpus rule,
the metric arithmetic, and one run end to end.

The end-to-end run uses real parts: PostgreSQL, the command's own temporary vector store
owner, the packaged MiniLM, and the real llama.cpp server (live_llm, which the command
finds answering at LOCAL_LLM_BASE_URL, so it starts none). It asserts the shape of what
comes out, not the quality figures: the product is changing under them.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test.utils import override_settings

from apps.assistant.evaluation.asking import Answer
from apps.assistant.evaluation.corpus import corpus_files
from apps.assistant.evaluation.matching import contains_answer, normalise
from apps.assistant.evaluation.metrics import score, summarise
from apps.assistant.evaluation.qa import EvaluationError, Question, parse_question, read_qa
from apps.knowledge.models import Collection, Document

# --- whole-word match -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answers", "found"),
    [
        ("You get 27 days of annual leave.", ["27 days"], True),
        ("You get 27 days of annual leave.", ["27"], True),
        ("The limit is 500 euros.", ["50"], False),
        ("The limit is 50.", ["50"], True),
        ("Book it in TravelDesk!", ["traveldesk"], True),
        ("Vacation:\n  27   Days", ["27 days"], True),
        ("27 days' notice", ["27 days"], True),
        ("Arrive at 09:00 sharp", ["09:00"], True),
        ("Arrive at 09:00 sharp", ["9:00"], False),
        ("carry over 5 unused days", ["unused day"], False),
        ("nothing here", [], False),
        ("anything", ["", "  ", "..."], False),
        ("Cost: £1,980 per pack", ["1,980"], True),
        ("Cost: £1,980 per pack", ["1980"], False),
        ("The run_id field", ["run id"], True),
        ("Zürich office", ["zürich"], True),
    ],
)
def test_answer_matches_only_as_whole_words(text, answers, found):
    assert contains_answer(text, answers) is found


def test_normalise_collapses_whitespace_and_punctuation():
    assert normalise("  Hello,   World!! -- 2.0 m/s ") == "hello world 2 0 m s"


# --- the question file ----------------------------------------------------------------------


def _write(path: Path, *objects: object) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects) + "\n")
    return path


def test_question_file_kinds_and_order(tmp_path):
    qa = _write(
        tmp_path / "qa.jsonl",
        {"id": "a1", "question": "How many?", "answers": ["27"], "source": "h.md"},
        {"id": "u1", "question": "Parking?", "answers": [], "source": None},
        {"id": "f1", "question": "And then?", "after": "a1", "answers": ["5"], "source": "h.md"},
    )
    questions = read_qa(qa)
    assert [(q.id, q.kind, q.answerable) for q in questions] == [
        ("a1", "answerable", True),
        ("u1", "unanswerable", False),
        ("f1", "follow-up", True),
    ]


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ({"question": "q", "answers": [], "source": None}, "no 'id'"),
        ({"id": "a", "question": " ", "answers": [], "source": None}, "'question'"),
        ({"id": "a", "question": "q", "answers": ["x"], "source": None}, "'source'"),
        ({"id": "a", "question": "q", "answers": [], "source": "h.md"}, "source null"),
        ({"id": "a", "question": "q", "answers": [3], "source": "h.md"}, "'answers'"),
    ],
)
def test_malformed_question_says_what_is_wrong(obj, says):
    with pytest.raises(EvaluationError, match=re.escape(says)):
        parse_question(obj, "qa.jsonl line 1")


def test_follow_up_must_come_after_its_question(tmp_path):
    qa = _write(
        tmp_path / "qa.jsonl",
        {"id": "f1", "question": "And?", "after": "a1", "answers": ["5"], "source": "h.md"},
        {"id": "a1", "question": "How many?", "answers": ["27"], "source": "h.md"},
    )
    with pytest.raises(EvaluationError, match="not an earlier question"):
        read_qa(qa)


def test_duplicate_ids_are_refused(tmp_path):
    row = {"id": "a1", "question": "How many?", "answers": [], "source": None}
    with pytest.raises(EvaluationError, match="used twice"):
        read_qa(_write(tmp_path / "qa.jsonl", row, row))


# --- which files are the corpus -------------------------------------------------------------


def test_corpus_is_the_manifest_files_when_there_is_a_manifest(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nText.")
    (tmp_path / "b.txt").write_text("B text.")
    (tmp_path / "README.md").write_text("# About this folder")
    (tmp_path / "manifest.json").write_text(
        json.dumps([{"file": "a.md", "title": "Doc A", "label": "internal"}, {"file": "b.txt"}])
    )
    files = corpus_files(tmp_path)
    assert [(f.name, f.title, f.label) for f in files] == [
        ("a.md", "Doc A", "internal"),
        ("b.txt", "b", None),
    ]


def test_corpus_is_every_file_without_a_manifest(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("A")
    (tmp_path / "sub" / "b.txt").write_text("B")
    (tmp_path / ".hidden").write_text("H")
    assert [f.name for f in corpus_files(tmp_path)] == ["a.md", "b.txt"]


def test_corpus_file_names_must_be_unique(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("A")
    (tmp_path / "sub" / "a.md").write_text("B")
    with pytest.raises(EvaluationError, match="unique"):
        corpus_files(tmp_path)


# --- metric arithmetic on hand-made answers -------------------------------------------------


def _answer(reply: str, *, generated: str = "", abstained: bool = False, cited=(), **kw) -> Answer:
    return Answer(
        reply=reply,
        generated=generated,
        abstained=abstained,
        cited_sources=tuple(cited),
        first_s=kw.pop("first_s", 1.0),
        total_s=kw.pop("total_s", 5.0),
        **kw,
    )


def test_metrics_on_hand_made_rows():
    a1 = Question("a1", "How many vacation days?", ("27 days", "27"), "handbook.md")
    a2 = Question("a2", "Hotel limit?", ("140",), "handbook.md")
    f1 = Question("f1", "And carry over?", ("5 unused days",), "handbook.md", after="a1")
    u1 = Question("u1", "Parking?", (), None)
    u2 = Question("u2", "Gym?", (), None)
    rows = [
        # evidence holds the fact, the model does not; cited from the source
        score(
            a1,
            _answer(
                "You get 27 days of annual leave.\nYou get plenty.",
                generated="You get plenty.",
                cited=["handbook.md"],
                first_s=0.5,
                sentences=2,
                supported=1,
            ),
        ),
        # wrongly abstained: no recall, wrong decision, nothing cited
        score(a2, _answer("I found nothing.", abstained=True, first_s=0.25)),
        # the model has it; cited from another file only
        score(
            f1,
            _answer(
                "Up to 5 unused days [1].",
                generated="Up to 5 unused days [1].",
                cited=["other.md"],
                first_s=2.0,
                sentences=1,
                supported=1,
            ),
        ),
        # rightly abstained
        score(u1, _answer("I found nothing.", abstained=True, first_s=0.1)),
        # answered what it should not have: wrong decision; its sentence unsupported
        score(u2, _answer("Gym is free.", generated="Gym is free.", first_s=3.0, sentences=1)),
    ]
    assert [(r.hit, r.model_hit, r.decided_right, r.cited) for r in rows] == [
        (True, False, True, True),
        (False, False, False, False),
        (True, True, True, False),
        (False, False, True, False),
        (False, False, False, False),
    ]
    summary = summarise(rows)
    assert summary.recall == pytest.approx(2 / 3)  # a1 and f1, of a1, a2, f1
    assert summary.model_recall == pytest.approx(1 / 3)
    assert summary.abstain == pytest.approx(3 / 5)
    assert summary.cited == pytest.approx(1 / 3)
    assert summary.grounded == pytest.approx(2 / 4)
    assert summary.n == 5
    assert summary.first_p50_s == pytest.approx(0.5)
    assert summary.notes == []
    assert summary.line() == (
        "answers: recall=0.67 model_recall=0.33 abstain=0.60 cited=0.33 grounded=0.50 "
        "n=5 first_p50_s=0.50"
    )
    out = rows[0].as_json()
    for field in ("id", "reply", "generated", "abstained", "cited_sources", "first_s", "total_s"):
        assert field in out
    json.dumps(out)  # plain JSON


def test_grounded_without_any_checked_sentence_is_zero_and_said():
    q = Question("a1", "How many?", ("27",), "h.md")
    summary = summarise([score(q, _answer("27 days", generated="27 days", first_s=1.5))])
    assert summary.grounded == 0.0
    assert any("grounded is 0.00" in note for note in summary.notes)
    assert summary.line().endswith("grounded=0.00 n=1 first_p50_s=1.50")


def test_median_of_an_even_count_is_the_middle_mean():
    q = Question("u", "?", (), None)
    rows = [score(q, _answer("x", abstained=True, first_s=s)) for s in (1.0, 2.0, 3.0, 10.0)]
    assert summarise(rows).first_p50_s == pytest.approx(2.5)


# --- end to end -----------------------------------------------------------------------------

LEAVE = (
    "# Leave policy\n\n## Annual leave\n\n"
    "Every employee of Quillmore gets 31 days of annual leave per year. Up to 8 unused "
    "days can be carried over into the next year; they expire on 30 April.\n"
)
KITCHEN = (
    "Kitchen rules at the Quillmore office.\n\n"
    "The coffee machine on the third floor is descaled every Tuesday by the facilities "
    "team. Label your food in the fridge with your name; the fridge is emptied every "
    "Friday at 15:00.\n"
)


def _q(qid: str, question: str, answers: list[str], source: str | None, after: str = ""):
    row = {"id": qid, "question": question, "answers": answers, "source": source}
    return {**row, "after": after} if after else row


FACTS = ("31 days", "8 unused", "tuesday", "friday", "15:00", "30 april")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live_llm")
def test_command_end_to_end_on_a_tiny_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "leave.md").write_text(LEAVE)
    (corpus / "kitchen.txt").write_text(KITCHEN)
    qa = _write(
        tmp_path / "qa.jsonl",
        _q("a1", "How many vacation days do I get?", ["31 days", "31"], "leave.md"),
        _q("a2", "When does the fridge get cleared out?", ["Friday", "15:00"], "kitchen.txt"),
        _q(
            "f1",
            "And can I take the unused ones into next year?",
            ["8 unused days", "30 April"],
            "leave.md",
            after="a1",
        ),
        _q("u1", "Who won the football World Cup in 1998?", [], None),
        _q("a3", "How often is the coffee machine descaled?", ["Tuesday"], "kitchen.txt"),
    )
    rows_path = tmp_path / "rows.jsonl"
    out, err = io.StringIO(), io.StringIO()
    # Short answers keep the run quick on a small machine; the path is the product's.
    with override_settings(LOCAL_LLM_MAX_TOKENS=96):
        call_command(
            "evaluate_answers",
            "--corpus", str(corpus), "--qa", str(qa), "--out", str(rows_path),
            stdout=out, stderr=err,
        )  # fmt: skip
    lines = out.getvalue().strip().splitlines()
    assert re.fullmatch(
        r"answers: recall=\d\.\d\d model_recall=\d\.\d\d abstain=\d\.\d\d cited=\d\.\d\d "
        r"grounded=\d\.\d\d n=5 first_p50_s=\d+\.\d\d",
        lines[-1],
    ), out.getvalue()
    assert "ingested 2 files" in out.getvalue() and "0 failed" in out.getvalue()
    for qid in ("a1", "a2", "f1", "u1", "a3"):
        assert any(line.startswith(qid + " ") for line in lines), out.getvalue()
    assert "starting the packaged one" not in err.getvalue()  # live_llm answered

    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a1", "a2", "f1", "u1", "a3"]
    for row in rows:
        assert isinstance(row["reply"], str) and row["reply"], row
        assert isinstance(row["generated"], str)
        assert isinstance(row["abstained"], bool)
        assert isinstance(row["cited_sources"], list)
        assert set(row["cited_sources"]) <= {"leave.md", "kitchen.txt"}
        assert 0 <= row["first_s"] <= row["total_s"]
    unanswerable = rows[3]
    assert not contains_answer(unanswerable["reply"], FACTS), unanswerable

    # Everything it made is gone: no collection, document, user or group named eval-*.
    assert not Collection.objects.filter(name__startswith="eval-").exists()
    assert not Document.objects.filter(original_name__in=["leave.md", "kitchen.txt"]).exists()
    assert not User.objects.filter(username__startswith="eval-").exists()
    assert not Group.objects.filter(name__startswith="eval-").exists()
