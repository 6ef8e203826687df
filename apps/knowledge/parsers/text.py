"""Plain text and Markdown: the document text is the file's own text.

Sections are slices of the decoded file, so a citation can highlight exactly what the
author wrote. The only cleanup is what every reader expects: the BOM is dropped and
line endings become "\\n".
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from apps.knowledge.parsers.base import (
    ParsedDocument,
    ParseError,
    Section,
    clean_text,
    collapse_title,
    has_words,
)

MARKDOWN_MIME = "text/markdown"
PLAIN_MIME = "text/plain"


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM optional) or UTF-16 with a BOM; nothing is guessed.

    Guessing latin-1 would "succeed" on any bytes and index mojibake; an admin can fix
    the file in seconds once told which byte is wrong.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            # The "utf-16" codec reads the BOM to pick the byte order and drops it.
            text = data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise ParseError(
                f"The text starts like UTF-16 but is damaged (first bad byte at position "
                f"{err.start}); save it as UTF-8 and upload it again."
            ) from None
        return _normalise_newlines(text)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ParseError(
            f"The text is not valid UTF-8 (first bad byte at position {err.start}); "
            "save it as UTF-8 and upload it again."
        ) from None
    return _normalise_newlines(text)


def _normalise_newlines(text: str) -> str:
    return clean_text(text.replace("\r\n", "\n").replace("\r", "\n"))


# --- Markdown structure -------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A line that cannot be the text of a setext heading: it is already a block of its own.
_NOT_PARAGRAPH = re.compile(r"^(?: {4}|\t| {0,3}(?:[-*+>]|\d{1,9}[.)])(?:[ \t]|$)| {0,3}#)")
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
# Front matter is recognised only when every line in it looks like YAML; otherwise a
# document that merely opens with a "---" rule would lose its first part.
_YAML_LINE = re.compile(r"^(?:\s*|[ \t].*|- .*|[\w-]+:.*|#.*)$")


@dataclass(frozen=True)
class _Heading:
    level: int
    title: str
    start: int  # where the heading's first line starts
    end: int  # where the line after the heading starts


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without its newline) for every line."""
    out: list[tuple[int, str]] = []
    pos = 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def _front_matter_end(lines: list[tuple[int, str]]) -> int:
    """Index of the first line after a YAML front-matter block, or 0 if there is none."""
    if not lines or lines[0][1].rstrip() != "---":
        return 0
    for i in range(1, len(lines)):
        if lines[i][1].rstrip() in ("---", "..."):
            return i + 1 if i > 1 else 0
        if not _YAML_LINE.match(lines[i][1]):
            return 0
    return 0


def find_headings(text: str) -> tuple[list[_Heading], int]:
    """Headings outside code fences, and the offset where the body starts (after front
    matter). Setext underlines count only under a plain paragraph line, as in CommonMark,
    so a "---" thematic break is not mistaken for one."""
    lines = _lines(text)
    first = _front_matter_end(lines)
    body_start = lines[first][0] if first < len(lines) else len(text)
    headings: list[_Heading] = []
    fence: str | None = None
    previous_is_paragraph = False
    for i in range(first, len(lines)):
        offset, line = lines[i]
        line_end = offset + len(line) + 1
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1)[0] == fence[0]:
                if len(fence_match.group(1)) >= len(fence) and not line.strip().strip(fence[0]):
                    fence = None
            previous_is_paragraph = False
            continue
        if fence_match:
            fence = fence_match.group(1)
            previous_is_paragraph = False
            continue
        atx = _ATX.match(line)
        if atx:
            title = (atx.group(2) or "").strip()
            headings.append(_Heading(len(atx.group(1)), title, offset, line_end))
            previous_is_paragraph = False
            continue
        setext = _SETEXT.match(line)
        if setext and previous_is_paragraph:
            prev_offset, prev_line = lines[i - 1]
            level = 1 if setext.group(1)[0] == "=" else 2
            headings.append(_Heading(level, prev_line.strip(), prev_offset, line_end))
            previous_is_paragraph = False
            continue
        previous_is_paragraph = bool(line.strip()) and not _NOT_PARAGRAPH.match(line)
    return headings, body_start


def looks_like_markdown(text: str) -> bool:
    headings, _ = find_headings(text)
    return any(h.title for h in headings)


def _slice_section(text: str, *, title: str, start: int, end: int) -> Section | None:
    """The stripped slice text[start:end] with its true offset, or None if it holds no
    letter or digit (a lone "---" rule or a row of asterisks is nothing to retrieve)."""
    body = text[start:end]
    stripped = body.strip()
    if not has_words(stripped):
        return None
    offset = start + (len(body) - len(body.lstrip()))
    return Section(title=title, text=stripped, page=None, start=offset)


def parse_markdown(text: str) -> ParsedDocument:
    headings, body_start = find_headings(text)
    sections: list[Section] = []
    cursor, current_title = body_start, ""
    for heading in headings:
        section = _slice_section(text, title=current_title, start=cursor, end=heading.start)
        if section:
            sections.append(section)
        cursor, current_title = min(heading.end, len(text)), heading.title
    section = _slice_section(text, title=current_title, start=cursor, end=len(text))
    if section:
        sections.append(section)

    title = None
    front = _FRONT_MATTER_TITLE.search(text, 0, body_start) if body_start else None
    if front:
        title = front.group(1).strip("'\"").strip() or None
    if title is None:
        title = next((h.title for h in headings if h.level == 1 and h.title), None)
    return ParsedDocument(
        mime_type=MARKDOWN_MIME, title=collapse_title(title), text=text, sections=sections
    )


def parse_plain(text: str) -> ParsedDocument:
    """Form feeds are page breaks in text exported from printers and old word
    processors; anything finer is the chunker's job."""
    sections: list[Section] = []
    cursor = 0
    for piece in text.split("\f"):
        section = _slice_section(text, title="", start=cursor, end=cursor + len(piece))
        if section:
            sections.append(section)
        cursor += len(piece) + 1
    return ParsedDocument(mime_type=PLAIN_MIME, title=None, text=text, sections=sections)


def parse_text(text: str) -> ParsedDocument:
    """Markdown or plain text, decided by the content: libmagic calls both text/plain
    (or text/x-c, text/csv, ... when the prose happens to look like code)."""
    if looks_like_markdown(text):
        return parse_markdown(text)
    return parse_plain(text)
