"""Choose the evidence weights, the abstention thresholds and the follow-up rule on the
answer dev sets, without the model (seconds per set, not minutes).

    .venv/bin/python bench/answer_tuning.py [eval/answers/demo eval/answers/opensource ...]

Each set (a folder with `qa.jsonl` and its corpus: `corpus/` or, for the demo, the folder
the qa's README names; see eval/answers/README.md) is ingested through the real pipeline
into a throw-away store, and every question is searched through the product's own path
as a throw-away employee: follow-up query, retrieve(), evidence.gather(). What comes back
(each sentence's meaning and words scores) is then re-ranked offline under every weight
setting of a small grid. It prints, per set and for the worst set:
- evidence recall: answerable and follow-up questions whose quotes hold an acceptable answer;
- abstain: right answer/abstain decisions over all questions, for each threshold pair;
- follow-ups: evidence recall of follow-ups searched as rewritten vs on their own words.
Settings are chosen by the worst set, not the average.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, isolate, prepare_database  # bench/ is on sys.path

DEMO = ROOT / "apps" / "knowledge" / "demo"


@dataclass
class Case:
    question: str
    kind: str  # "answerable" | "unanswerable" | "follow-up"
    answers: list[str]
    sentences: list  # evidence.Scored of every sentence, as the product scored them
    alone: list | None = None  # a follow-up searched on its own words


def _features(env, questions, files) -> list[Case]:
    from apps.assistant import evidence
    from apps.assistant.followup import search_query
    from apps.retrieval.embeddings import embed_query
    from apps.search.search import retrieve

    env.ingest_files(files, out=print)
    user = env.employee()
    searched: dict[str, str] = {}

    def look(text: str):
        found = retrieve(user=user, question=text)
        passages = [{"text": h.text, "title": h.title, "section": h.section} for h in found.hits]
        return evidence.gather(text, embed_query(text), passages).sentences

    cases = []
    for q in questions:
        earlier = [searched[q.after]] if q.after else []
        query = search_query(q.question, earlier)
        searched[q.id] = query.text
        case = Case(q.question, q.kind, list(q.answers), look(query.text))
        if q.after:
            case.alone = look(q.question)
        cases.append(case)
    return cases


def _quoted(sentences, weights) -> str:
    from apps.assistant import evidence

    return " ".join(
        s.text for s in evidence.select_quotes(evidence.ranked(sentences, weights), weights)
    )


def _recall(cases, weights, field="sentences"):
    from apps.assistant.evaluation.matching import contains_answer

    wanted = [c for c in cases if c.kind != "unanswerable" and getattr(c, field) is not None]
    hits = sum(contains_answer(_quoted(getattr(c, field), weights), c.answers) for c in wanted)
    return hits / len(wanted) if wanted else 0.0


def _abstain(cases, weights):
    from apps.assistant import evidence

    right = sum(
        evidence.answerable(evidence.Evidence(c.sentences, weights)) == (c.kind != "unanswerable")
        for c in cases
    )
    return right / len(cases)


def main(paths: list[Path]) -> None:
    from apps.assistant.evaluation.corpus import CorpusEnvironment, corpus_files
    from apps.assistant.evaluation.qa import read_qa
    from apps.retrieval.embeddings import embed_query
    from apps.search.evaluation.sandbox import sandboxed

    embed_query("warm up")
    sets: dict[str, list[Case]] = {}
    for path in paths:
        corpus = path / "corpus" if (path / "corpus").is_dir() else DEMO
        with sandboxed(CorpusEnvironment(), warn=print) as env:
            sets[path.name] = _features(env, read_qa(path / "qa.jsonl"), corpus_files(corpus))

    from dataclasses import replace

    from apps.assistant.evidence import DEFAULT_WEIGHTS

    print("\n# evidence recall (quotes hold an answer), worst set first")
    grid = []
    for words, place, lead, section, quotes in itertools.product(
        (0.2, 0.35, 0.5), (0.0, 0.05, 0.1), (0.0, 0.03, 0.06), (0.0, 0.1, 0.2, 0.4), (2, 3)
    ):
        w = replace(
            DEFAULT_WEIGHTS, words=words, place=place, lead=lead, section=section, quotes=quotes
        )
        per = {n: _recall(c, w) for n, c in sets.items()}
        grid.append(
            (
                min(per.values()),
                sum(per.values()),
                -quotes,
                words,
                place,
                lead,
                section,
                quotes,
                per,
            )
        )
    grid.sort(reverse=True)
    for worst, _, _, words, place, lead, section, quotes, per in grid[:10]:
        sets_text = " ".join(f"{n}={v:.2f}" for n, v in per.items())
        print(
            f"worst={worst:.2f} words={words} place={place} lead={lead} section={section} "
            f"quotes={quotes}  {sets_text}"
        )
    default = {n: _recall(c, DEFAULT_WEIGHTS) for n, c in sets.items()}
    print("default:", " ".join(f"{n}={v:.2f}" for n, v in default.items()))

    print("\n# abstain accuracy, worst set first")
    rows = []
    for min_meaning, min_words, slack, min_section in itertools.product(
        [x / 100 for x in range(26, 56, 3)],
        (0.5, 0.6, 0.75, 2.0),
        (0.1, 0.15),
        (0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 2.0),
    ):
        w = replace(
            DEFAULT_WEIGHTS,
            min_meaning=min_meaning,
            min_words=min_words,
            slack=slack,
            min_section=min_section,
        )
        per = {n: _abstain(c, w) for n, c in sets.items()}
        rows.append(
            (min(per.values()), sum(per.values()), min_meaning, min_words, slack, min_section, per)
        )
    rows.sort(reverse=True)
    for worst, _, min_meaning, min_words, slack, min_section, per in rows[:10]:
        sets_text = " ".join(f"{n}={v:.2f}" for n, v in per.items())
        print(
            f"worst={worst:.2f} min_meaning={min_meaning} min_words={min_words} "
            f"slack={slack} min_section={min_section}  {sets_text}"
        )
    default = {n: _abstain(c, DEFAULT_WEIGHTS) for n, c in sets.items()}
    print("default:", " ".join(f"{n}={v:.2f}" for n, v in default.items()))

    print("\n# follow-ups: evidence recall rewritten vs on their own words (2 quotes)")
    for name, cases in sets.items():
        follow = [c for c in cases if c.alone is not None]
        print(
            f"{name}: n={len(follow)} rewritten={_recall(follow, DEFAULT_WEIGHTS):.2f} "
            f"alone={_recall(follow, DEFAULT_WEIGHTS, field='alone'):.2f}"
        )

    if "--misses" in sys.argv:
        from apps.assistant import evidence
        from apps.assistant.evaluation.matching import contains_answer

        for name, cases in sets.items():
            for c in cases:
                if c.kind != "unanswerable" and not contains_answer(
                    _quoted(c.sentences, DEFAULT_WEIGHTS), c.answers
                ):
                    print(f"MISS {name}: {c.question} {c.answers}")
                    for s in evidence.ranked(c.sentences, DEFAULT_WEIGHTS)[:3]:
                        print(f"    {s.meaning:.2f} {s.words:.2f} {s.text[:110]}")

    print("\n# score distributions (best sentence meaning / words)")
    for name, cases in sets.items():
        for kind in ("answerable", "follow-up", "unanswerable"):
            best = sorted(
                round(max((s.meaning for s in c.sentences), default=-1), 2)
                for c in cases
                if c.kind == kind
            )
            heads = sorted(
                round(max((s.section for s in c.sentences), default=-1), 2)
                for c in cases
                if c.kind == kind
            )
            print(f"{name} {kind}: meaning {best}\n    section {heads}")


if __name__ == "__main__":
    targets = [Path(p) for p in sys.argv[1:] if not p.startswith("--")] or sorted(
        p for p in (ROOT / "eval" / "answers").iterdir() if (p / "qa.jsonl").is_file()
    )
    var = Path(tempfile.mkdtemp(prefix="enclave-bench-answers-"))
    isolate(
        db_url=prepare_database("enclave_bench_answers"),
        var=var,
        broker="redis://127.0.0.1:6379/14",
    )
    main(targets)
