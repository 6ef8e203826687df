"""DOCX: headings start sections; tables are kept, one row per line.

A DOCX is a zip, so before python-docx touches it the archive's directory is checked
against the unpack limit (archive.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from apps.knowledge.parsers.archive import check_zip
from apps.knowledge.parsers.base import (
    ParsedDocument,
    ParseError,
    TextAssembler,
    collapse_title,
)

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCUMENT_PART = "word/document.xml"

_HEADING_STYLE = re.compile(r"^(?:heading\s*[1-9]|title)$", re.IGNORECASE)


def check_archive(path: Path, *, max_unpacked_bytes: int) -> None:
    """Refuse a DOCX that would unpack to too much, judged from the zip directory."""
    check_zip(path, kind="DOCX", required=DOCUMENT_PART, max_unpacked_bytes=max_unpacked_bytes)


def _is_heading(paragraph: Any) -> bool:
    """By style name, following base styles: "Chapter" based on "Heading 1" counts."""
    style = paragraph.style
    for _ in range(10):  # style chains can loop in hand-edited files
        if style is None:
            return False
        if _HEADING_STYLE.match(style.name or ""):
            return True
        style = style.base_style
    return False


def _cell_text(cell: Any) -> str:
    from docx.table import Table  # heavy: python-docx loads lxml

    parts: list[str] = []
    for item in cell.iter_inner_content():
        parts.append(_table_text(item) if isinstance(item, Table) else item.text)
    return " ".join(" ".join(parts).split())


def _table_text(table: Any) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: list[Any] = []
        for cell in row.cells:
            # A merged cell is reported once per grid column it spans.
            if any(cell._tc is other for other in seen):
                continue
            seen.append(cell._tc)
            cells.append(_cell_text(cell))
        line = " | ".join(c for c in cells if c)
        if line:
            rows.append(line)
    return "\n".join(rows)


def parse_docx(path: Path, *, max_unpacked_bytes: int) -> ParsedDocument:
    check_archive(path, max_unpacked_bytes=max_unpacked_bytes)

    # heavy: python-docx loads lxml; only a worker parsing a DOCX pays for it
    import docx
    from docx.opc.exceptions import PackageNotFoundError  # heavy, as above
    from docx.table import Table  # heavy, as above

    try:
        document = docx.Document(str(path))
    except ValueError as err:
        # python-docx refuses a DOCM or a template by the main part's content type;
        # its message also holds our storage path, which no admin should see.
        found = re.search(r"content type is '([^']+)'", str(err))
        if not found:
            raise
        raise ParseError(
            f"This Word file is a macro-enabled document or a template ({found.group(1)}), "
            "not a plain DOCX; save it as a Word Document (.docx) and upload it again."
        ) from None
    except PackageNotFoundError:
        raise ParseError(
            "The DOCX file could not be read: it looks damaged (no Word package inside)."
        ) from None

    assembler = TextAssembler()
    title = ""
    first_heading: str | None = None
    body: list[str] = []

    def flush() -> None:
        assembler.add_section(title=title, text="\n\n".join(body))
        body.clear()

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            text = _table_text(item)
            if text:
                body.append(text)
            continue
        text = item.text.strip()
        if not text:
            continue
        if _is_heading(item):
            flush()
            title = " ".join(text.split())
            first_heading = first_heading or title
            assembler.add_heading(text)
        else:
            body.append(text)
    flush()

    doc_title = collapse_title(document.core_properties.title) or first_heading
    return assembler.build(mime_type=DOCX_MIME, title=doc_title)
