"""The parser contract: what every parser returns, and the one error it may raise.

Kept free of third-party imports so the web process can import the types (and the
upload form can quote SUPPORTED_TYPES_SENTENCE) without loading pypdf, lxml or docx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Re-exported: the parsers' sentences quote sizes too.
from apps.core.sizes import human_size as human_size

SUPPORTED_TYPES_SENTENCE = (
    "Supported types are PDF, DOCX, PPTX, XLSX, CSV, ODT, ODS, ODP, RTF, HTML, Markdown, "
    "plain text and source code, e-mail (.eml, .msg) and scans (PNG, JPEG, TIFF)."
)


@dataclass(frozen=True)
class Section:
    title: str  # the heading this text sits under ("" if none)
    text: str
    page: int | None  # 1-based page for PDFs, None otherwise
    start: int  # character offset of `text` inside ParsedDocument.text


@dataclass(frozen=True)
class Attachment:
    """A file inside a message; ingestion makes it a document of its own."""

    name: str
    data: bytes


@dataclass(frozen=True)
class OcrReport:
    """Which pages were read by OCR, and Tesseract's mean word confidence (0-100)."""

    pages: tuple[int, ...]
    confidence: float


@dataclass(frozen=True)
class ParsedDocument:
    mime_type: str
    title: str | None  # a title found inside the file, or None
    text: str  # the full extracted text; every Section is a slice of it
    sections: list[Section]
    # Header fields worth showing (an e-mail's subject, from, to, date), in order.
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    ocr: OcrReport | None = None


class ParseError(Exception):
    """`str(err)` is one sentence a knowledge admin can act on; never a traceback."""


# PostgreSQL text columns refuse NUL, and UTF-8 cannot encode lone surrogates (pypdf and
# UTF-16 files can both produce them). Replacing one code point with one keeps offsets.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Make extracted text storable; never changes its length."""
    return _UNSTORABLE.sub("\ufffd", text)


def has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class TextAssembler:
    """Builds ParsedDocument.text and its sections together, so offsets cannot drift.

    Formats whose text we compose ourselves (PDF, DOCX, HTML) append here; the text
    formats slice the file's own text instead (see text.py).
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._sections: list[Section] = []

    def _write(self, text: str) -> int:
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        return start

    def _separate(self) -> None:
        if self._length:
            self._write("\n\n")

    def add_heading(self, heading: str) -> None:
        """Heading lines stay in the document text (it should read naturally) but belong
        to no section: they become the title of the sections that follow."""
        heading = clean_text(heading).strip()
        if heading:
            self._separate()
            self._write(heading)

    def add_section(self, *, title: str, text: str, page: int | None = None) -> None:
        text = clean_text(text).strip()
        if not has_words(text):
            return
        self._separate()
        start = self._write(text)
        self._sections.append(Section(title=title, text=text, page=page, start=start))

    @property
    def sections(self) -> list[Section]:
        return list(self._sections)

    def build(
        self,
        *,
        mime_type: str,
        title: str | None,
        metadata: dict[str, str] | None = None,
        attachments: tuple[Attachment, ...] = (),
        ocr: OcrReport | None = None,
    ) -> ParsedDocument:
        return ParsedDocument(
            mime_type=mime_type,
            title=title,
            text="".join(self._parts),
            sections=list(self._sections),
            metadata=dict(metadata or {}),
            attachments=attachments,
            ocr=ocr,
        )


def collapse_title(value: str | None) -> str | None:
    """A title is one line; whitespace-only means there is none. Capped, because a page
    whose <title> holds a paragraph would otherwise overflow the title column."""
    if value is None:
        return None
    value = " ".join(clean_text(value).split())
    if len(value) > MAX_TITLE_CHARS:
        value = value[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return value or None


MAX_TITLE_CHARS = 300
