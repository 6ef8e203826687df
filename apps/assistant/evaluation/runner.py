"""The whole evaluation of answers, in order:

1. Reads the question file and the corpus folder's file list (corpus.py), and refuses
   a question whose `source` is not among the files.
2. Makes sure a model server answers at LOCAL_LLM_BASE_URL: the running one, or the
   packaged one started for the run and stopped afterwards.
3. In a temporary MEDIA_ROOT and a temporary vector store owner, ingests every file
   through the real pipeline into one throw-away collection that one throw-away employee
   reads (document_ingest in this process: no worker, nothing on a broker).
4. Asks every question through services.ask() as that employee, each in a new
   conversation, a follow-up in the conversation of its `after` question; scores and
   reports each answer as it comes (metrics.py).
5. Writes the rows (--out) before removing the collection, documents, conversations,
   employee, groups, files and store, then returns the summary.

The embedder and the prompt tokenizer are loaded before the first question: a running
web process has them loaded, so their one-time load is no question's latency.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from apps.assistant.evaluation.asking import ask_and_read
from apps.assistant.evaluation.corpus import CorpusEnvironment, corpus_files
from apps.assistant.evaluation.metrics import Row, Summary, format_row, score, summarise
from apps.assistant.evaluation.qa import EvaluationError, Question, read_qa
from apps.assistant.models import Conversation
from apps.assistant.services import conversation_create
from apps.retrieval.embeddings import embed_query
from apps.routing.local_server import local_server_for_run
from apps.routing.tokens import count_tokens
from apps.search.evaluation.sandbox import sandboxed

Say = Callable[[str], object]


def _check_sources(questions: list[Question], names: set[str], corpus: Path) -> None:
    unknown = sorted({q.source for q in questions if q.source and q.source not in names})
    if unknown:
        raise EvaluationError(
            f"sources not among the files of {corpus}: {', '.join(unknown)} "
            f"(files: {', '.join(sorted(names))})"
        )


def evaluate_answers(
    *, corpus: Path, qa: Path, out: Path | None, say: Say, warn: Say
) -> tuple[list[Row], Summary]:
    questions = read_qa(qa)
    files = corpus_files(corpus)
    _check_sources(questions, {f.name for f in files}, corpus)
    rows: list[Row] = []
    with ExitStack() as stack:
        stack.enter_context(local_server_for_run(note=warn))
        env = stack.enter_context(sandboxed(CorpusEnvironment(), warn=warn))
        env.ingest_files(files, out=say)
        employee = env.employee()
        embed_query("warm up")
        count_tokens("warm up")
        conversations: dict[str, Conversation] = {}
        for question in questions:
            if question.after is not None:
                conversation = conversations[question.after]
            else:
                conversation = conversation_create(user=employee)
            conversations[question.id] = conversation
            answer = ask_and_read(
                user=employee, conversation=conversation, question=question.question
            )
            row = score(question, answer)
            rows.append(row)
            say(format_row(row))
        if out is not None:
            # Written before the clean-up, so a failing clean-up loses no results.
            out.write_text("".join(json.dumps(r.as_json()) + "\n" for r in rows), encoding="utf-8")
    return rows, summarise(rows)
