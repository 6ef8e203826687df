"""Calibrate the grounding check (apps/assistant/grounding.py) on sentences whose answer
is known, from the answer dev sets' corpora:

    .venv/bin/python bench/grounding.py [CORPUS_DIR ...]

Each corpus is parsed and chunked by the product's own parser and chunker. Then, for
every chunk (the passage):
- supported: each of its sentences reworded, about a third of its content words swapped
  for words of other documents (a model that restates a passage in its own words),
  checked against that passage;
- unsupported, other text: a sentence from another document, checked against the passage;
- unsupported, changed number: one of its sentences with a number changed;
- unsupported, added claim: one of its sentences with the second half of another
  document's sentence joined on ("…, and …": what a small model invents).
It prints, for each word-share threshold, the share of supported sentences
the check accepts and the share of each kind of unsupported sentence it wrongly accepts,
per corpus, and picks the threshold with the largest margin between the worst corpus's
supported share and its worst share of wrong acceptances.
(No embeddings: the check uses none; see apps/assistant/grounding.py.)
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from pathlib import Path

from common import ROOT, isolate, prepare_database  # bench/ is on sys.path

CORPORA = [
    ROOT / "apps" / "knowledge" / "demo",
    ROOT / "eval" / "answers" / "opensource" / "corpus",
]
PER_CORPUS = 80  # sentences of each kind


def _passages(corpus: Path) -> list[dict]:
    from apps.assistant.evaluation.corpus import corpus_files
    from apps.knowledge.ingestion import document_chunks

    passages = []
    for file in corpus_files(corpus):
        _, chunks = document_chunks(path=file.path)
        for chunk in chunks:
            passages.append(
                {
                    "text": chunk.text,
                    "title": file.title,
                    "section": chunk.section,
                    "doc": file.name,
                }
            )
    return passages


def _reword(sentence: str, rng: random.Random, vocabulary: list[str]) -> str:
    from apps.assistant.sentences import content_words

    mine = content_words(sentence)
    return " ".join(
        rng.choice(vocabulary)
        if w.lower().strip(".,;:") in mine and not re.search(r"\d", w) and rng.random() < 0.33
        else w
        for w in sentence.split()
    )


def _change_number(sentence: str, rng: random.Random) -> str | None:
    found = list(re.finditer(r"\d+", sentence))
    if not found:
        return None
    m = rng.choice(found)
    new = str(int(m.group()) + rng.choice((1, 2, 3, 7, 10)))
    return sentence[: m.start()] + new + sentence[m.end() :]


def _cases(passages: list[dict], rng: random.Random):
    from apps.assistant.sentences import content_words, spans

    good, other, changed, added = [], [], [], []
    for p in passages:
        units = [u.text for u in spans(p["text"]) if len(content_words(u.text)) >= 4]
        strangers = [q for q in passages if q["doc"] != p["doc"]]
        theirs = [
            u.text for q in strangers for u in spans(q["text"]) if len(content_words(u.text)) >= 4
        ]
        vocabulary = sorted(
            {w for t in theirs for w in content_words(t) if not w[0].isdigit()}
            - content_words(p["text"])
        )
        for u in units:
            if vocabulary:
                good.append((_reword(u, rng, vocabulary), p))
            number = _change_number(u, rng)
            if number:
                changed.append((number, p))
            if theirs:
                words = rng.choice(theirs).rstrip(".").split()
                added.append((f"{u.rstrip('.')}, and {' '.join(words[len(words) // 2 :])}.", p))
        if theirs and units:
            other.append((rng.choice(theirs), p))
    for group in (good, other, changed, added):
        rng.shuffle(group)
    return good[:PER_CORPUS], other[:PER_CORPUS], changed[:PER_CORPUS], added[:PER_CORPUS]


def _accepted(cases, word_share: float) -> float:
    from apps.assistant import grounding

    def accepted(text: str, passage: dict) -> bool:
        result = grounding.check(text, [{**passage, "n": 1}], word_share)
        return result.sentences > 0 and not result.unsupported

    ok = sum(accepted(text, p) for text, p in cases)
    return ok / len(cases) if cases else 0.0


def main(corpora: list[Path]) -> None:
    from apps.assistant import grounding

    rng = random.Random(13)
    sets = {
        c.parent.name if c.name == "corpus" else c.name: _cases(_passages(c), rng) for c in corpora
    }
    rows = []
    for share in (0.4, 0.5, 0.6, 0.7, 0.8):
        per = {n: tuple(_accepted(k, share) for k in cases) for n, cases in sets.items()}
        worst_good = min(v[0] for v in per.values())
        worst_bad = max(max(v[1:]) for v in per.values())
        rows.append((round(worst_good - worst_bad, 4), -worst_bad, worst_good, share, per))
        text = "  ".join(
            f"{n}: supported {g:.2f} wrongly: other {o:.2f} number {c:.2f} added {a:.2f}"
            for n, (g, o, c, a) in per.items()
        )
        print(f"word_share={share}  {text}")
    best = max(rows)
    print(
        f"chosen: word_share={best[3]} (worst supported {best[2]:.2f}, "
        f"worst wrongly accepted {-best[1]:.2f}); product: word_share={grounding.MIN_WORD_SHARE}"
    )


if __name__ == "__main__":
    targets = [Path(p) for p in sys.argv[1:]] or CORPORA
    var = Path(tempfile.mkdtemp(prefix="enclave-bench-grounding-"))
    isolate(
        db_url=prepare_database("enclave_bench_answers"),
        var=var,
        broker="redis://127.0.0.1:6379/14",
    )
    main(targets)
