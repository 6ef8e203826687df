"""Sentences and content words: the units that evidence, citations and the grounding check
compare. Plain functions over text, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Where a sentence ends: its mark(s), any closing quote or bracket, then a space or the
# end (so "17.1 million" and "e.g." inside a sentence do not end it).
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
# A word worth comparing: three letters or more, or any number ("27", "4.2", "£140").
_WORD = re.compile(r"[^\W_]{3,}|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
STOP_WORDS = frozenset(
    "the and for are but not you all any can had her was one our out has have this that with "
    "from they will would there their what when which who why how its into than then them "
    "these those been being were does did also only such some more most other about over "
    "passage passages document documents context question answer".split()
)
# A line that is a list item, a table row or a heading is a unit of its own.
_LINE_BREAK = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*•|#]|\d+[.)]\s))")
_MARKUP = re.compile(r"^\s*(?:[-*•#>]+|\d+[.)])\s*|\*\*|__|`")


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


def numbers(text: str) -> set[str]:
    """The numbers a text states, with thousands separators dropped ("10,598" → "10598")."""
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def sentences(text: str) -> list[str]:
    """`text` cut after each sentence's end mark and the spaces after it; joined back
    together the pieces are `text` again."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        while end < len(text) and text[end].isspace():
            end += 1
        pieces.append(text[start:end])
        start = end
    if start < len(text):
        pieces.append(text[start:])
    return pieces


@dataclass(frozen=True)
class Span:
    """One sentence of a passage, where it stands in the passage's text."""

    start: int
    end: int
    text: str  # the passage's own words, whitespace runs collapsed, list markup removed


def spans(text: str) -> list[Span]:
    """The sentences of a passage, list items, table rows and headings each one unit."""
    out: list[Span] = []
    block_start = 0
    blocks = [*_LINE_BREAK.finditer(text), None]
    for brk in blocks:
        block_end = brk.start() if brk is not None else len(text)
        offset = block_start
        for piece in sentences(text[block_start:block_end]):
            clean = " ".join(_MARKUP.sub("", piece).split())
            if clean:
                out.append(Span(offset, offset + len(piece), clean))
            offset += len(piece)
        block_start = brk.end() if brk is not None else len(text)
    return out
