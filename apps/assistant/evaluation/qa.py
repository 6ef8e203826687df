"""The question file of `evaluate_answers`: one JSON object a line.

    {"id": "a01", "question": "…", "answers": ["27 days", "27"], "source": "handbook.md"}
    {"id": "u01", "question": "…", "answers": [], "source": null}
    {"id": "f01", "question": "And next year?", "after": "a01", "answers": […], "source": "…"}

A question with answers is answerable from `source` (a file name in the corpus); one
without is not answerable from the corpus at all. `after` makes a follow-up, asked in the
conversation of that earlier question (which must come before it in the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANSWERABLE = "answerable"
UNANSWERABLE = "unanswerable"
FOLLOW_UP = "follow-up"


class EvaluationError(ValueError):
    """The evaluation cannot run as asked; str() says why, for the person running it."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None
    after: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    @property
    def kind(self) -> str:
        if self.after:
            return FOLLOW_UP
        return ANSWERABLE if self.answerable else UNANSWERABLE


def _field(obj: dict[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise EvaluationError(f"{where}: no {name!r}")
    return obj[name]


def parse_question(obj: Any, where: str) -> Question:
    if not isinstance(obj, dict):
        raise EvaluationError(f"{where}: not a JSON object")
    qid, text = _field(obj, "id", where), _field(obj, "question", where)
    answers, source = _field(obj, "answers", where), obj.get("source")
    after = obj.get("after")
    if not isinstance(qid, str) or not qid.strip():
        raise EvaluationError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise EvaluationError(f"{where} ({qid}): 'question' must be a non-empty string")
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise EvaluationError(f"{where} ({qid}): 'answers' must be a list of non-empty strings")
    if answers and not (isinstance(source, str) and source):
        raise EvaluationError(f"{where} ({qid}): an answerable question names its 'source' file")
    if not answers and source is not None:
        raise EvaluationError(f"{where} ({qid}): a question without answers has source null")
    if after is not None and not (isinstance(after, str) and after):
        raise EvaluationError(f"{where} ({qid}): 'after' must be an earlier question's id")
    return Question(qid, text.strip(), tuple(answers), source, after)


def read_qa(path: Path) -> list[Question]:
    """The questions in file order; every `after` names an earlier question."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise EvaluationError(f"cannot read {path}: {err.strerror or err}") from None
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvaluationError(f"{where}: not JSON ({err.msg})") from None
        question = parse_question(obj, where)
        if question.id in seen:
            raise EvaluationError(f"{where}: id {question.id!r} is used twice")
        if question.after is not None and question.after not in seen:
            raise EvaluationError(
                f"{where} ({question.id}): 'after' names {question.after!r}, which is not "
                "an earlier question of the file"
            )
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise EvaluationError(f"{path} holds no questions")
    return questions
