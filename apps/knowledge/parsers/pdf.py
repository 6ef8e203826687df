"""PDF: at least one section per page (a citation can name the page), split and titled
by the outline (bookmarks) where the outline's headings can be found in the page text."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from apps.knowledge.parsers.base import (
    ParsedDocument,
    ParseError,
    TextAssembler,
    collapse_title,
    has_words,
    human_size,
)
from apps.knowledge.parsers.ocr import ocr_report
from apps.knowledge.parsers.pdf_pages import ocr_pdf_pages, page_tables

PDF_MIME = "application/pdf"

ENCRYPTED = "PDF is encrypted; remove the password and upload it again."
NO_TEXT = (
    "The PDF has no text, not even by OCR of its pages; if it is a scan, scan it again "
    "at 300 dpi and upload it again."
)

# Tools write these when nobody typed a title; they would mislabel every citation.
_PLACEHOLDER_TITLES = {"untitled", "anonymous", "(anonymous)", "unknown", "title", "document"}


def _open(path: Path) -> Any:
    # heavy: pypdf (and its crypto backends); only a worker parsing a PDF pays for it
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError  # heavy, as above

    try:
        reader = PdfReader(path)
    except PdfReadError as err:
        raise ParseError(f"The PDF file could not be read: it looks damaged ({err}).") from None
    if reader.is_encrypted:
        # Many PDFs are "encrypted" only to restrict printing or copying: the empty user
        # password opens them, and a reader is entitled to their text.
        try:
            opened = reader.decrypt("")
        except (DependencyError, NotImplementedError):
            # AES needs the optional `cryptography` package; the admin's fix is the same.
            raise ParseError(ENCRYPTED) from None
        if not opened:
            raise ParseError(ENCRYPTED)
    return reader


def _page_titles(reader: Any) -> dict[int, list[str]]:
    """0-based page index → titles of the outline entries that start there, in outline
    order. Outlines are often broken; without one, pages simply have no title."""
    titles: dict[int, list[str]] = {}

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                page = reader.get_destination_page_number(item)
                title = collapse_title(str(item.title))
            except Exception:  # noqa: S112 - one bad bookmark must not lose the others
                continue
            if page is not None and page >= 0 and title:
                titles.setdefault(page, []).append(title)

    try:
        walk(reader.outline)
    except Exception:
        logging.getLogger(__name__).debug("ignoring unreadable PDF outline", exc_info=True)
    return titles


def _heading_line(text: str, title: str, start: int) -> re.Match[str] | None:
    """The line of `text` (from `start`) that is exactly the outline title, allowing
    for the line breaks and spacing text extraction puts inside long titles."""
    words = [re.escape(w) for w in title.split()]
    pattern = r"^[ \t]*" + r"\s+".join(words) + r"[ \t]*(?:\n|$)"
    return re.compile(pattern, re.MULTILINE).search(text, start)


def _add_page(
    assembler: TextAssembler, *, text: str, page: int, carried: str, titles: list[str]
) -> str:
    """Split one page at the outline headings found on it; returns the title that
    carries over to the next page. A heading that cannot be found in the text still
    names the page, as the first one on it would."""
    cuts: list[tuple[re.Match[str], str]] = []
    cursor = 0
    for title in titles:
        match = _heading_line(text, title, cursor)
        if match:
            cuts.append((match, title))
            cursor = match.end()
    if not cuts:
        title = titles[0] if titles else carried
        assembler.add_section(title=title, text=text, page=page)
        return titles[-1] if titles else carried
    assembler.add_section(title=carried, text=text[: cuts[0][0].start()], page=page)
    for number, (match, title) in enumerate(cuts):
        end = cuts[number + 1][0].start() if number + 1 < len(cuts) else len(text)
        assembler.add_heading(match.group(0))
        assembler.add_section(title=title, text=text[match.end() : end], page=page)
    return cuts[-1][1]


def _metadata_title(reader: Any) -> str | None:
    try:
        title = collapse_title(reader.metadata.title if reader.metadata else None)
    except Exception:
        return None
    if title is None or title.lower() in _PLACEHOLDER_TITLES:
        return None
    return title


def parse_pdf(path: Path, *, max_unpacked_bytes: int) -> ParsedDocument:
    from pypdf.errors import FileNotDecryptedError  # heavy: pypdf, as in _open

    reader = _open(path)
    try:
        pages = list(reader.pages)
    except FileNotDecryptedError:
        raise ParseError(ENCRYPTED) from None
    if not pages:
        raise ParseError("The PDF has no pages.")

    outline = _page_titles(reader)
    texts: list[str] = []
    extracted = 0
    for page in pages:
        text = page.extract_text() or ""
        extracted += len(text)
        # Decompression is pypdf's business, but a small file whose text runs to
        # hundreds of MB is a bomb whatever the mechanism; stop before memory does.
        if extracted > max_unpacked_bytes:
            raise ParseError(
                f"The PDF's text runs past {human_size(max_unpacked_bytes)}, "
                "over the limit; split it into smaller files."
            )
        texts.append(text)

    for number, text in page_tables(path, len(pages)).items():
        texts[number - 1] = text
    scanned = [n for n, text in enumerate(texts, start=1) if not has_words(text)]
    ocred = ocr_pdf_pages(path, scanned) if scanned else {}
    for number, result in ocred.items():
        texts[number - 1] = result.text

    assembler = TextAssembler()
    current_title = ""
    for index, text in enumerate(texts):
        current_title = _add_page(
            assembler,
            text=text,
            page=index + 1,
            carried=current_title,
            titles=outline.get(index, []),
        )
    if not assembler.sections:
        raise ParseError(NO_TEXT)
    return assembler.build(mime_type=PDF_MIME, title=_metadata_title(reader), ocr=ocr_report(ocred))
