"""Does each sentence the model wrote stand on a passage?

A generated sentence is *supported* when each of its clauses (split at "and", "but", ";"
…; clauses of fewer than two content words ride along) holds, against a passage it cites
(or, when it cites none, any passage it was given):
- every number it states appears in that passage, and
- most of its content words are in that passage (at least `MIN_WORD_SHARE`).
No embeddings: in the calibration an embedding-similarity fallback (any cosine from 0.65
up) changed no verdict at this word share, and it cost embedding every passage sentence
again for each answer.
Sentences with fewer than two content words ("Yes.", "See [2].") claim nothing and are
not counted. The thresholds were set with `bench/grounding.py`, which scores sentences
known to be supported (the passages' own sentences, a third of their words swapped)
against sentences known not to be (sentences of other documents, true sentences with a
number changed or with half of another document's sentence joined on); README "Answers"
has the figures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.assistant.citations import cited_numbers
from apps.assistant.sentences import content_words, numbers, sentences

MIN_WORD_SHARE = 0.4
MIN_CLAIM_WORDS = 2
# Past this share of unsupported sentences the model's answer does not stand.
MAX_UNSUPPORTED_SHARE = 0.5

_MARK = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
# Where a sentence joins two claims.
_CLAUSE_BREAK = re.compile(r",?\s+(?:and|but|while|whereas|although|plus)\s+|;\s*", re.IGNORECASE)


def _clauses(claim: str) -> list[str]:
    """The claim's clauses that claim something on their own; the claim itself if none."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(claim)]
    parts = [p for p in parts if len(content_words(p)) >= MIN_CLAIM_WORDS]
    return parts or [claim]


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


def _supported_by(claim: str, passage: dict[str, Any], word_share: float) -> bool:
    text = f"{passage.get('title', '')} {passage.get('section', '')} {passage['text']}"
    if not numbers(claim) <= numbers(text):
        return False
    words = content_words(claim)
    return len(words & content_words(text)) / len(words) >= word_share


def check(
    text: str, passages: Sequence[dict[str, Any]], word_share: float = MIN_WORD_SHARE
) -> Check:
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
    for index, claim, candidates in claims:
        result.sentences += 1
        # Every clause must stand on one passage: a true half does not carry an invented
        # half ("27 days a year, and 3 more abroad").
        if all(
            any(_supported_by(part, p, word_share) for p in candidates) for part in _clauses(claim)
        ):
            result.supported += 1
        else:
            result.unsupported.append(index)
    return result
