"""The evidence an answer opens with, the context the model reads, and whether there is
anything to answer from at all.

Every sentence of the retrieved passages is scored against the search query by three
measurements (weights in `EvidenceWeights`, chosen on the answer dev sets in eval/answers/,
see README "Answers"):
- meaning: cosine of the query's and the sentence's embeddings (the sentence is embedded
  with its document title and section, so "Annual leave" speaks for the list under it);
- words: the share of the query's content words the sentence (with its section) contains,
  each weighted by how rare it is among the candidate sentences;
- place: the passage's rank in the search results.
The best one to three sentences are quoted verbatim before the model's first token; the
model is given each top passage's best sentences with their neighbours, not whole chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apps.assistant.sentences import Span, content_words, spans
from apps.retrieval.embeddings import embed

# Sentences shorter than this carry no fact worth quoting on their own.
MIN_EVIDENCE_WORDS = 3
MAX_SENTENCE_CHARS = 600


@dataclass(frozen=True)
class EvidenceWeights:
    meaning: float = 1.0
    words: float = 0.35
    place: float = 0.05
    # A second or third quote must score within this of the first.
    keep_within: float = 0.08
    quotes: int = 2
    # Model context: the best sentences of each passage, with this many neighbours.
    context_sentences: int = 2
    context_neighbours: int = 1
    context_passages: int = 4
    # Abstain when the best sentence's meaning score is under this and the query's rare
    # words are not found either (see `answerable`).
    min_meaning: float = 0.42
    min_words: float = 0.5


DEFAULT_WEIGHTS = EvidenceWeights()


@dataclass(frozen=True)
class Scored:
    n: int  # the passage's number, from 1, in search rank order
    index: int  # the sentence's place in its passage
    span: Span
    meaning: float
    words: float
    score: float


@dataclass(frozen=True)
class Evidence:
    sentences: list[Scored]  # every sentence of the passages, best first
    quotes: list[Scored]  # the ones quoted before the answer

    @property
    def best(self) -> Scored | None:
        return self.sentences[0] if self.sentences else None


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


def gather(
    query: str,
    query_vector: Sequence[float],
    passages: Sequence[dict[str, Any]],
    weights: EvidenceWeights = DEFAULT_WEIGHTS,
) -> Evidence:
    """Score every sentence of `passages` (best search hit first) against `query`."""
    units: list[tuple[int, int, Span, str]] = []
    for n, passage in enumerate(passages, 1):
        for index, span in enumerate(spans(passage["text"])):
            if len(span.text) <= MAX_SENTENCE_CHARS:
                units.append((n, index, span, _heading(passage)))
    if not units:
        return Evidence(sentences=[], quotes=[])
    vectors = embed([f"{heading}: {span.text}" if heading else span.text for _, _, span, heading in units])
    words = [content_words(f"{heading} {span.text}") for _, _, span, heading in units]
    idf = _idf(words)
    asked = content_words(query)
    scored = []
    for (n, index, span, _), vector, unit in zip(units, vectors, words, strict=True):
        meaning = sum(a * b for a, b in zip(query_vector, vector, strict=True))
        share = _word_share(asked, unit, idf)
        place = 1.0 / n
        score = weights.meaning * meaning + weights.words * share + weights.place * place
        scored.append(Scored(n, index, span, round(meaning, 4), round(share, 4), round(score, 4)))
    scored.sort(key=lambda s: s.score, reverse=True)
    return Evidence(sentences=scored, quotes=_quotes(scored, weights))


def _quotes(scored: list[Scored], weights: EvidenceWeights) -> list[Scored]:
    quotes: list[Scored] = []
    for s in scored:
        if len(quotes) >= weights.quotes:
            break
        if len(content_words(s.span.text)) < MIN_EVIDENCE_WORDS:
            continue
        if quotes and s.score < quotes[0].score - weights.keep_within:
            break
        if any(q.span.text == s.span.text for q in quotes):
            continue
        quotes.append(s)
    # In reading order when they come from one passage, so a list reads as written.
    return sorted(quotes, key=lambda s: (s.n, s.index)) if len({q.n for q in quotes}) == 1 else quotes


def answerable(evidence: Evidence, weights: EvidenceWeights = DEFAULT_WEIGHTS) -> bool:
    """Is there something to answer from? Either a sentence means what the query asks,
    or one holds most of the query's (rare) words."""
    best_meaning = max((s.meaning for s in evidence.sentences), default=-1.0)
    best_words = max((s.words for s in evidence.sentences), default=0.0)
    return best_meaning >= weights.min_meaning or (
        best_words >= weights.min_words and best_meaning >= weights.min_meaning - 0.15
    )


def context_texts(
    evidence: Evidence, passages: Sequence[dict[str, Any]], weights: EvidenceWeights = DEFAULT_WEIGHTS
) -> list[tuple[int, str]]:
    """What the model reads: for the passages holding the best sentences (best first),
    those sentences with their neighbours, in the passage's order, gaps marked "…"."""
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
