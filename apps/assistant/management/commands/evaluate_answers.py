"""`manage.py evaluate_answers --corpus DIR --qa FILE.jsonl [--out rows.jsonl]`: ask a
question file through the chat's own service path and score the answers.

    manage.py evaluate_answers --corpus apps/knowledge/demo --qa eval/answers/demo/qa.jsonl

What it does and the metrics: apps/assistant/evaluation/runner.py and metrics.py. The
last line printed is always the summary:
`answers: recall=R model_recall=M abstain=A cited=C grounded=G n=N first_p50_s=T`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.assistant.evaluation.qa import EvaluationError
from apps.assistant.evaluation.runner import evaluate_answers
from apps.core.migrations_check import require_migrated


class Command(BaseCommand):
    help = (
        "Ingest a folder into a throw-away collection, ask every question of a JSON-lines "
        "file through the chat's service path as a throw-away employee, and print recall, "
        "model_recall, abstain, cited, grounded and first_p50_s. Starts the packaged model "
        "server for the run when none answers at LOCAL_LLM_BASE_URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--corpus", type=Path, required=True, help="folder of documents")
        parser.add_argument("--qa", type=Path, required=True, help="questions, JSON lines")
        parser.add_argument("--out", type=Path, help="write one JSON object per question here")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        try:
            _rows, summary = evaluate_answers(
                corpus=options["corpus"],
                qa=options["qa"],
                out=options["out"],
                say=self.stdout.write,
                warn=self.stderr.write,
            )
        except (EvaluationError, RuntimeError) as err:
            raise CommandError(str(err)) from None
        for note in summary.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(summary.line())
