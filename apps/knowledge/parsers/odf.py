"""OpenDocument text, spreadsheets and presentations (odfpy).

ODT: headings start sections, tables one row per line. ODS: one section per sheet, rows
with their header. ODP: one section per slide, speaker notes kept. Repeated cells and rows
(an ODS marks a million empty rows as one repeated row) are expanded only while they hold
text, and counted against the same cell cap as XLSX.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.knowledge.parsers.archive import LOCKED_SENTENCE, check_zip, read_member
from apps.knowledge.parsers.base import ParsedDocument, ParseError, TextAssembler, collapse_title
from apps.knowledge.parsers.sheets import too_many_cells
from apps.knowledge.parsers.tables import MAX_CELLS, render_rows

ODT_MIME = "application/vnd.oasis.opendocument.text"
ODS_MIME = "application/vnd.oasis.opendocument.spreadsheet"
ODP_MIME = "application/vnd.oasis.opendocument.presentation"
KINDS = {ODT_MIME: "ODT", ODS_MIME: "ODS", ODP_MIME: "ODP"}
MAX_REPEAT = 1000  # a repeated cell or row with text is expanded at most this often


def _local(node: Any) -> str:
    qname = getattr(node, "qname", None)
    return qname[1] if qname else ""


def _text(node: Any) -> str:
    from odf import teletype  # heavy: odfpy's element model

    return teletype.extractText(node).strip()


def _repeat(node: Any, attribute: str) -> int:
    value = node.attributes.get(("urn:oasis:names:tc:opendocument:xmlns:table:1.0", attribute))
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


def _table_rows(table: Any, seen: list[int]) -> list[list[str]]:
    rows: list[list[str]] = []
    for row in table.childNodes:
        if _local(row) == "table-header-rows":
            rows.extend(_table_rows(row, seen))
            continue
        if _local(row) != "table-row":
            continue
        cells: list[str] = []
        for cell in row.childNodes:
            if _local(cell) not in ("table-cell", "covered-table-cell"):
                continue
            value = _text(cell)
            cells.extend(
                [value]
                * (min(_repeat(cell, "number-columns-repeated"), MAX_REPEAT) if value else 1)
            )
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        for _ in range(min(_repeat(row, "number-rows-repeated"), MAX_REPEAT)):
            seen[0] += len(cells)
            if seen[0] > MAX_CELLS:
                raise too_many_cells("spreadsheet")
            rows.append(cells)
    return rows


def _odt(body: Any, assembler: TextAssembler) -> str | None:
    title = ""
    first: str | None = None
    parts: list[str] = []
    seen = [0]

    def flush() -> None:
        assembler.add_section(title=title, text="\n\n".join(parts))
        parts.clear()

    for node in body.childNodes:
        kind = _local(node)
        if kind == "h":
            flush()
            title = " ".join(_text(node).split())
            first = first or title
            assembler.add_heading(title)
        elif kind == "table":
            parts.append(render_rows(_table_rows(node, seen)))
        elif kind in ("p", "list", "section"):
            text = _text(node)
            if text:
                parts.append(text)
    flush()
    return first


def _ods(body: Any, assembler: TextAssembler) -> None:
    from odf import table  # heavy, as above

    seen = [0]
    for sheet in body.getElementsByType(table.Table):
        name = str(sheet.getAttribute("name") or "")
        assembler.add_heading(name)
        assembler.add_section(title=name, text=render_rows(_table_rows(sheet, seen)))


def _odp(body: Any, assembler: TextAssembler) -> None:
    from odf import draw  # heavy, as above

    for number, page in enumerate(body.getElementsByType(draw.Page), start=1):
        texts: list[str] = []
        notes: list[str] = []
        for child in page.childNodes:
            if _local(child) == "notes":
                notes.append(_text(child))
            else:
                texts.append(_text(child))
        texts = [t for t in texts if t]
        heading = texts[0].splitlines()[0] if texts else ""
        if texts and texts[0] == heading:
            texts = texts[1:]  # the title frame: it heads the slide already
        notes_text = "\n".join(n for n in notes if n)
        if notes_text:
            texts.append("Speaker notes: " + notes_text)
        assembler.add_heading(f"Slide {number}: {heading}" if heading else f"Slide {number}")
        assembler.add_section(
            title=heading or f"Slide {number}", text="\n\n".join(texts), page=number
        )


def parse_odf(path: Path, *, mime: str, max_unpacked_bytes: int) -> ParsedDocument:
    kind = KINDS[mime]
    names = check_zip(
        path, kind=kind, required="content.xml", max_unpacked_bytes=max_unpacked_bytes
    )
    if "META-INF/manifest.xml" in names and b"encryption-data" in read_member(
        path, "META-INF/manifest.xml"
    ):
        raise ParseError(LOCKED_SENTENCE.format(kind=kind))
    from odf.opendocument import load  # heavy, as above

    document = load(str(path))
    assembler = TextAssembler()
    first_heading: str | None = None
    if mime == ODT_MIME:
        first_heading = _odt(document.text, assembler)
    elif mime == ODS_MIME:
        _ods(document.spreadsheet, assembler)
    else:
        _odp(document.presentation, assembler)
    if not assembler.sections:
        raise ParseError(f"The {kind} file contains no text to index.")
    titles = [_text(t) for t in document.meta.childNodes if _local(t) == "title"]
    title = collapse_title(titles[0] if titles else None) or first_heading
    return assembler.build(mime_type=mime, title=title)
