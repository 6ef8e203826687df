"""Document parsers: sniff the type from the content, extract text with pages/offsets.

    parsed = parse_file(path, max_unpacked_bytes=settings.UNPACKED_MAX_BYTES)
    for s in parsed.sections:
        assert parsed.text[s.start : s.start + len(s.text)] == s.text

Importing this package is cheap: pypdf, python-docx and lxml load on first use.
"""

from apps.knowledge.parsers.base import (
    SUPPORTED_TYPES_SENTENCE,
    ParsedDocument,
    ParseError,
    Section,
)
from apps.knowledge.parsers.registry import PARSERS, parse_file, sniff_mime

__all__ = [
    "PARSERS",
    "SUPPORTED_TYPES_SENTENCE",
    "ParseError",
    "ParsedDocument",
    "Section",
    "parse_file",
    "sniff_mime",
]
