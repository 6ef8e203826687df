"""RTF: striprtf turns the markup into text; paragraphs become sections of one document."""

from __future__ import annotations

from apps.knowledge.parsers.base import ParsedDocument, ParseError, TextAssembler

RTF_MIME = "text/rtf"


def parse_rtf(data: bytes) -> ParsedDocument:
    from striprtf.striprtf import rtf_to_text  # small, but only RTF needs it

    # RTF is 7-bit by its spec; other characters are escapes (\'e9, \u233).
    source = data.decode("latin-1")
    if not source.lstrip().startswith("{\\rtf"):
        raise ParseError("The RTF file could not be read: it does not start with {\\rtf.")
    text = rtf_to_text(source, errors="replace")
    assembler = TextAssembler()
    assembler.add_section(title="", text=text)
    if not assembler.sections:
        raise ParseError("The RTF file contains no text to index.")
    return assembler.build(mime_type=RTF_MIME, title=None)
