"""The evidence an answer opens with, the context the model reads, and whether there is
anything to answer from at all.

Every sentence of the retrieved passages (a FAQ's question with its answer) is scored
against the search query by these measurements (weights in `EvidenceWeights`, chosen on
the answer dev sets in eval/answers/ with bench/answer_tuning.py, see README "Answers"):
- meaning: cosine of the query's and the sentence's embeddings (the sentence is embedded
  with its document title and section, so "Annual leave" speaks for the list under it);
- words: the share of the query's content words the sentence (with its section) contains,
  each weighted by how rare it is among the candidate sentences;
- place: the passage's rank in the search results, and the sentence's in its passage;
- section: the cosine of the query and the passage's section heading ("Your first day").
The best three sentences are quoted verbatim before the model's first token; the
model is given each top passage's best sentences with their neighbours, not whole chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apps.assistant.sentences import content_words, spans
from apps.retrieval.embeddings import embed

# Sentences shorter than this carry no fact worth quoting on their own.
MIN_EVIDENCE_WORDS = 3
MAX_SENTENCE_CHARS = 600


@dataclass(frozen=True)
class EvidenceWeights:
    meaning: float = 1.0
    words: float = 0.2
    place: float = 0.1  # × 1 / the passage's search rank
    lead: float = 0.03  # × 1 / (1 + the sentence's place in its passage)
    section: float = 0.1  # × the cosine of the query and the passage's section heading
    # A second or third quote must score within this of the first (1.0: no cut; the
    # dev sets' worst recall fell with every cut tried).
    keep_within: float = 1.0
    quotes: int = 3
    # Model context: the best sentences of each passage, with this many neighbours.
    context_sentences: int = 2
    context_neighbours: int = 1
    context_passages: int = 4
    # Abstain when the best sentence's meaning score is under this, unless one sentence
    # holds at least `min_words` of the query's words and means nearly as much (`slack`).
    min_meaning: float = 0.38
    min_words: float = 0.6
    slack: float = 0.15
    # ...or when a section heading means what the query asks ("Your first day").
    min_section: float = 0.6


DEFAULT_WEIGHTS = EvidenceWeights()


@dataclass(frozen=True)
class Scored:
    n: int  # the passage's number, from 1, in search rank order
    index: int  # the sentence's place in its passage
    text: str  # what is quoted: the sentence (a FAQ's question with its answer)
    meaning: float
    words: float
    section: float = 0.0

    def score(self, weights: EvidenceWeights) -> float:
        return (
            weights.meaning * self.meaning
            + weights.words * self.words
            + weights.place / self.n
            + weights.lead / (1 + self.index)
            + weights.section * self.section
        )


@dataclass(frozen=True)
class Evidence:
    sentences: list[Scored]  # every sentence of the passages, best first
    weights: EvidenceWeights = DEFAULT_WEIGHTS

    @property
    def quotes(self) -> list[Scored]:
        """The ones quoted before the answer."""
        return select_quotes(self.sentences, self.weights)


def _idf(units: Sequence[set[str]]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for words in units:
        for w in words:
            counts[w] = counts.get(w, 0) + 1
    total = len(units) or 1
    return {w: math.log(1 + total / c) for w, c in counts.items()}


def _word_share(query: set[str], unit: set[str], idf: dict[str, float]) -> float:
    """IDF-weighted share of the query's content words found in the unit; a word also
    counts when one is a prefix of the other of five letters or more (leave / leaves)."""
    if not query:
        return 0.0
    rare = math.log(1 + len(idf) + 1)  # a query word no candidate has weighs most
    total = found = 0.0
    for w in query:
        weight = idf.get(w, rare)
        total += weight
        if w in unit or any(
            len(w) >= 5 and len(u) >= 5 and (u.startswith(w[:5]) and w.startswith(u[:5]))
            for u in unit
        ):
            found += weight
    return found / total if total else 0.0


def _heading(passage: dict[str, Any]) -> str:
    return " — ".join(part for part in (passage.get("title"), passage.get("section")) if part)


def _units(passages: Sequence[dict[str, Any]]) -> list[tuple[int, int, str, str]]:
    """(passage number, place, text, heading) for every sentence; a sentence that asks a
    question (a FAQ's) is taken with the sentence after it, its answer."""
    units = []
    for n, passage in enumerate(passages, 1):
        found = [s.text for s in spans(passage["text"])]
        for index, text in enumerate(found):
            if text.endswith("?") and index + 1 < len(found):
                text = f"{text} {found[index + 1]}"
            if len(text) <= MAX_SENTENCE_CHARS:
                units.append((n, index, text, _heading(passage)))
    return units


def gather(
    query: str,
    query_vector: Sequence[float],
    passages: Sequence[dict[str, Any]],
    weights: EvidenceWeights = DEFAULT_WEIGHTS,
) -> Evidence:
    """Score every sentence of `passages` (best search hit first) against `query`."""
    units = _units(passages)
    if not units:
        return Evidence(sentences=[], weights=weights)
    sections = [p.get("section") or p.get("title") or "" for p in passages]
    heads = sorted({h for h in sections if h})
    texts = [f"{heading}: {text}" if heading else text for _, _, text, heading in units]
    vectors = embed([*texts, *heads])
    head_meaning = {
        h: _cosine(query_vector, v) for h, v in zip(heads, vectors[len(texts) :], strict=True)
    }
    words = [content_words(f"{heading} {text}") for _, _, text, heading in units]
    idf = _idf(words)
    asked = content_words(query)
    scored = [
        Scored(
            n,
            index,
            text,
            round(_cosine(query_vector, vector), 4),
            round(_word_share(asked, unit, idf), 4),
            round(head_meaning.get(sections[n - 1], 0.0), 4),
        )
        for (n, index, text, _), vector, unit in zip(
            units, vectors[: len(texts)], words, strict=True
        )
    ]
    return Evidence(sentences=ranked(scored, weights), weights=weights)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # both normalised


def ranked(sentences: Sequence[Scored], weights: EvidenceWeights) -> list[Scored]:
    return sorted(sentences, key=lambda s: s.score(weights), reverse=True)


def select_quotes(ranked_sentences: Sequence[Scored], weights: EvidenceWeights) -> list[Scored]:
    """The best one to `weights.quotes` sentences, close enough to the best, no repeats,
    best first."""
    quotes: list[Scored] = []
    for s in ranked_sentences:
        if len(quotes) >= weights.quotes:
            break
        if len(content_words(s.text)) < MIN_EVIDENCE_WORDS:
            continue
        if quotes and s.score(weights) < quotes[0].score(weights) - weights.keep_within:
            break
        if any(s.text in q.text or q.text in s.text for q in quotes):
            continue
        quotes.append(s)
    return quotes


def answerable(evidence: Evidence) -> bool:
    """Is there something to answer from? Either a sentence means what the query asks,
    or one holds most of the query's (rare) words and means nearly as much."""
    weights = evidence.weights
    best_meaning = max((s.meaning for s in evidence.sentences), default=-1.0)
    best_words = max((s.words for s in evidence.sentences), default=0.0)
    best_section = max((s.section for s in evidence.sentences), default=-1.0)
    return (
        best_meaning >= weights.min_meaning
        or (best_words >= weights.min_words and best_meaning >= weights.min_meaning - weights.slack)
        or best_section >= weights.min_section
    )


def context_texts(evidence: Evidence, passages: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    """What the model reads: for the passages holding the best sentences (best first),
    those sentences with their neighbours, in the passage's order, gaps marked "…"."""
    weights = evidence.weights
    chosen: dict[int, set[int]] = {}
    for s in evidence.sentences:
        if s.n not in chosen and len(chosen) >= weights.context_passages:
            continue
        picked = chosen.setdefault(s.n, set())
        if len(picked) < weights.context_sentences:
            picked.add(s.index)
    out = []
    for n, picked in chosen.items():
        units = spans(passages[n - 1]["text"])
        keep = sorted(
            {
                i
                for p in picked
                for i in range(p - weights.context_neighbours, p + weights.context_neighbours + 1)
                if 0 <= i < len(units)
            }
        )
        parts: list[str] = []
        for previous, i in zip([None, *keep], keep, strict=False):
            if previous is not None and i != previous + 1:
                parts.append("…")
            parts.append(units[i].text)
        out.append((n, " ".join(parts)))
    return out
