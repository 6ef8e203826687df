"""Sentence-aware chunking with overlap (llama-index's SentenceSplitter).

Chunk sizes are counted in the embedding model's own word pieces, because that model
truncates its input (MiniLM at 256): a chunk longer than that would be embedded only in
part. Each chunk keeps the absolute character offsets of its text inside the document's
extracted text, its page, and the title of the section it sits in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from apps.knowledge.parsers.base import Section


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    section: str
    page: int | None
    char_start: int
    char_end: int


def _locate(haystack: str, needle: str, start_from: int) -> int:
    """Where a chunk's text sits in its section; the splitter may trim whitespace."""
    pos = haystack.find(needle, start_from)
    if pos < 0:
        pos = haystack.find(needle)
    if pos < 0:
        # Fall back to the chunk's first words: good enough to highlight the passage.
        head = needle[:40]
        pos = haystack.find(head, start_from)
    return max(pos, 0)


def chunk_sections(
    sections: Sequence[Section],
    *,
    chunk_size: int,
    chunk_overlap: int,
    tokenizer: Callable[[str], list] | None = None,
) -> list[Chunk]:
    # heavy: llama-index pulls in its whole core (and nltk) on import
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        tokenizer=tokenizer,
        paragraph_separator="\n\n",
    )
    chunks: list[Chunk] = []
    for section in sections:
        cursor = 0
        for piece in splitter.split_text(section.text):
            piece = piece.strip()
            if not piece:
                continue
            offset = _locate(section.text, piece, cursor)
            start = section.start + offset
            end = min(start + len(piece), section.start + len(section.text))
            # Overlap means the next chunk may start before this one ends.
            cursor = offset + max(1, len(piece) // 2)
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=piece,
                    section=section.title,
                    page=section.page,
                    char_start=start,
                    char_end=end,
                )
            )
    return chunks
