"""Check a question file against its corpus, the way `evaluate_answers` will read both.

    .venv/bin/python eval/answers/check.py apps/knowledge/demo eval/answers/demo/qa.jsonl
    .venv/bin/python eval/answers/check.py eval/answers/opensource/corpus \
        eval/answers/opensource/qa.jsonl

For every question with answers, every acceptable answer must occur, as whole words after
the same normalisation the metric uses, in the text the product's own parser extracts
from the question's `source`. Prints each failure and a count per kind; exits 1 on any
failure. Needs no database: only settings, the parsers and the matcher.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")

import django  # noqa: E402  (after the path and settings above)

django.setup()

from apps.assistant.evaluation.corpus import corpus_files  # noqa: E402
from apps.assistant.evaluation.matching import contains_answer  # noqa: E402
from apps.assistant.evaluation.qa import read_qa  # noqa: E402
from apps.knowledge.ingestion import document_parse  # noqa: E402


def main(corpus: Path, qa: Path) -> int:
    questions = read_qa(qa)
    texts = {f.name: document_parse(path=f.path).text for f in corpus_files(corpus)}
    failures = 0
    for q in questions:
        if not q.answers:
            continue
        if q.source not in texts:
            print(f"{q.id}: source {q.source!r} is not a file of {corpus}")
            failures += 1
            continue
        for answer in q.answers:
            if not contains_answer(texts[q.source], [answer]):
                print(f"{q.id}: {answer!r} is not in {q.source}")
                failures += 1
    kinds = Counter(q.kind for q in questions)
    print(
        f"{len(questions)} questions: {kinds['answerable']} answerable, "
        f"{kinds['unanswerable']} unanswerable, {kinds['follow-up']} follow-ups; "
        f"{failures} answers not found in their source"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
