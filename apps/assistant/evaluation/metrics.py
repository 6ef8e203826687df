"""Scoring the answers of `evaluate_answers`.

Per question (a Row), then over the set (a Summary, printed as its last line):

- recall: questions with answers (answerable and follow-ups) whose reply, all the text the
  employee sees, holds an acceptable answer as whole words (see matching.py);
- model_recall: the same on the model's generated text alone;
- abstain: questions whose abstain/answer decision was right (no answers → abstained,
  answers → not abstained), over all questions;
- cited: questions with answers whose answer cites or quotes a passage of their `source`;
- grounded: generated sentences the product's grounding check found supported, over all
  generated sentences it checked (summed over questions; 0.00 when none was checked);
- first_p50_s: the median over all questions of seconds to the first readable thing.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from apps.assistant.evaluation.asking import Answer
from apps.assistant.evaluation.matching import contains_answer
from apps.assistant.evaluation.qa import Question


@dataclass(frozen=True)
class Row:
    id: str
    kind: str
    question: str
    answerable: bool
    reply: str
    generated: str
    abstained: bool
    cited_sources: list[str]
    first_s: float
    total_s: float
    status: str
    searched: str
    sentences: int
    supported: int
    hit: bool  # reply holds an acceptable answer (False for unanswerable questions)
    model_hit: bool  # generated holds one
    decided_right: bool  # abstained exactly when the question has no answer
    cited: bool  # a cited or quoted passage comes from the question's source

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def score(question: Question, answer: Answer) -> Row:
    answerable = question.answerable
    return Row(
        id=question.id,
        kind=question.kind,
        question=question.question,
        answerable=answerable,
        reply=answer.reply,
        generated=answer.generated,
        abstained=answer.abstained,
        cited_sources=list(answer.cited_sources),
        first_s=round(answer.first_s, 3),
        total_s=round(answer.total_s, 3),
        status=answer.status,
        searched=answer.searched,
        sentences=answer.sentences,
        supported=answer.supported,
        hit=answerable and contains_answer(answer.reply, question.answers),
        model_hit=answerable and contains_answer(answer.generated, question.answers),
        decided_right=answer.abstained != answerable,
        cited=answerable and question.source in answer.cited_sources,
    )


@dataclass(frozen=True)
class Summary:
    recall: float
    model_recall: float
    abstain: float
    cited: float
    grounded: float
    n: int
    first_p50_s: float
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"answers: recall={self.recall:.2f} model_recall={self.model_recall:.2f} "
            f"abstain={self.abstain:.2f} cited={self.cited:.2f} grounded={self.grounded:.2f} "
            f"n={self.n} first_p50_s={self.first_p50_s:.2f}"
        )


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def summarise(rows: list[Row]) -> Summary:
    answerable = [r for r in rows if r.answerable]
    sentences = sum(r.sentences for r in rows)
    notes = []
    if not answerable:
        notes.append("no question has answers: recall, model_recall and cited are 0.00")
    if sentences == 0:
        notes.append(
            "no answer carried a grounding check (Message.grounding empty): grounded is 0.00"
        )
    return Summary(
        recall=_share(sum(r.hit for r in answerable), len(answerable)),
        model_recall=_share(sum(r.model_hit for r in answerable), len(answerable)),
        abstain=_share(sum(r.decided_right for r in rows), len(rows)),
        cited=_share(sum(r.cited for r in answerable), len(answerable)),
        grounded=_share(sum(r.supported for r in rows), sentences),
        n=len(rows),
        first_p50_s=statistics.median([r.first_s for r in rows]) if rows else 0.0,
        notes=notes,
    )


def _mark(flag: bool, applies: bool = True) -> str:
    return ("y" if flag else "n") if applies else "-"


def format_row(row: Row) -> str:
    """One printed line per question: what was decided, matched and cited, and when."""
    excerpt = " ".join(row.reply.split())
    excerpt = excerpt if len(excerpt) <= 90 else excerpt[:87] + "..."
    grounding = f"{row.supported}/{row.sentences}" if row.sentences else "-"
    searched = f" searched={row.searched!r}" if row.searched else ""
    return (
        f"{row.id:<6} {row.kind:<12} {row.status:<10} "
        f"recall={_mark(row.hit, row.answerable)} model={_mark(row.model_hit, row.answerable)} "
        f"cited={_mark(row.cited, row.answerable)} "
        f"decision={'ok' if row.decided_right else 'WRONG'} grounded={grounding} "
        f"first={row.first_s:.2f}s total={row.total_s:.2f}s{searched}  {excerpt!r}"
    )
