"""Does each sentence the model wrote stand on a passage?

A generated sentence is *supported* when, against a passage it cites (or, when it cites
none, any passage it was given):
- every number it states appears in that passage, and
- most of its content words are in that passage (at least `MIN_WORD_SHARE`), or its
  embedding is close to one of the passage's sentences (cosine at least `MIN_MEANING`).
Sentences with fewer than two content words ("Yes.", "See [2].") claim nothing and are
not counted. The thresholds were set with `bench/grounding.py`, which scores sentences
known to be supported (the passages' own sentences, lightly reworded) against sentences
known not to be (sentences of other documents, and true sentences with a number changed);
README "Answers" has the figures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.assistant.citations import cited_numbers
from apps.assistant.sentences import content_words, numbers, sentences, spans
from apps.retrieval.embeddings import embed

MIN_WORD_SHARE = 0.6
MIN_MEANING = 0.72
MIN_CLAIM_WORDS = 2
# Past this share of unsupported sentences the model's answer does not stand.
MAX_UNSUPPORTED_SHARE = 0.5

_MARK = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


@dataclass
class Check:
    sentences: int = 0  # claims checked
    supported: int = 0
    unsupported: list[int] = field(default_factory=list)  # indexes into sentences(text)

    @property
    def verdict(self) -> str:
        if self.sentences and len(self.unsupported) > MAX_UNSUPPORTED_SHARE * self.sentences:
            return "evidence_only"
        return "kept"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sentences": self.sentences,
            "supported": self.supported,
            "unsupported": self.unsupported,
            "verdict": self.verdict,
        }


def _supported_by(
    claim: str,
    vector: Sequence[float] | None,
    passage: dict[str, Any],
    passage_vectors: list[list[float]],
) -> bool:
    text = passage["text"]
    heading = f"{passage.get('title', '')} {passage.get('section', '')}"
    if not numbers(claim) <= numbers(f"{heading} {text}"):
        return False
    words = content_words(claim)
    share = len(words & content_words(f"{heading} {text}")) / len(words)
    if share >= MIN_WORD_SHARE:
        return True
    if vector is None:
        return False
    return any(
        sum(a * b for a, b in zip(vector, theirs, strict=True)) >= MIN_MEANING
        for theirs in passage_vectors
    )


def check(text: str, passages: Sequence[dict[str, Any]]) -> Check:
    """Check each sentence of the model's `text` against the `passages` (numbered "n")."""
    result = Check()
    by_number = {p["n"]: p for p in passages}
    claims: list[tuple[int, str, list[dict[str, Any]]]] = []
    for index, sentence in enumerate(sentences(text)):
        claim = _MARK.sub("", sentence).strip()
        if len(content_words(claim)) < MIN_CLAIM_WORDS:
            continue
        cited = [by_number[n] for n in cited_numbers(sentence) if n in by_number]
        claims.append((index, claim, cited or list(passages)))
    if not claims:
        return result
    # Embeddings only for what words alone do not settle.
    vectors = embed([c for _, c, _ in claims])
    passage_units = {p["n"]: [u.text for u in spans(p["text"])] for p in passages}
    flat = [(n, u) for n, units in passage_units.items() for u in units]
    unit_vectors = embed([u for _, u in flat])
    per_passage: dict[int, list[list[float]]] = {}
    for (n, _), v in zip(flat, unit_vectors, strict=True):
        per_passage.setdefault(n, []).append(v)
    for (index, claim, candidates), vector in zip(claims, vectors, strict=True):
        result.sentences += 1
        if any(_supported_by(claim, vector, p, per_passage.get(p["n"], [])) for p in candidates):
            result.supported += 1
        else:
            result.unsupported.append(index)
    return result
