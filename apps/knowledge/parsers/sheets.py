"""XLSX and CSV: one section per sheet, each row rendered with its header (tables.py).

A sheet is refused past MAX_CELLS by its declared dimension before it is read, and cells
are counted as they are read, because the dimension can lie and the count cannot.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from apps.knowledge.parsers.archive import check_zip
from apps.knowledge.parsers.base import ParsedDocument, ParseError, TextAssembler, collapse_title
from apps.knowledge.parsers.tables import MAX_CELLS, render_rows
from apps.knowledge.parsers.text import decode_text

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv"
WORKBOOK_PART = "xl/workbook.xml"


def too_many_cells(kind: str) -> ParseError:
    return ParseError(
        f"The {kind} holds more than {MAX_CELLS:,} cells, the limit for one document; "
        "split it into smaller files, or export only the rows worth searching."
    )


def counted(
    rows: Iterable[Sequence[object]], *, kind: str, seen: list[int]
) -> Iterator[Sequence[object]]:
    """Pass rows through, counting cells into seen[0] across sheets."""
    for row in rows:
        seen[0] += len(row)
        if seen[0] > MAX_CELLS:
            raise too_many_cells(kind)
        yield row


def parse_xlsx(path: Path, *, max_unpacked_bytes: int) -> ParsedDocument:
    check_zip(path, kind="XLSX", required=WORKBOOK_PART, max_unpacked_bytes=max_unpacked_bytes)
    import openpyxl  # heavy: openpyxl loads its whole styles and cell model

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except KeyError as err:
        raise ParseError(
            f"The XLSX file could not be read: a part it names is missing ({err})."
        ) from None
    seen = [0]
    assembler = TextAssembler()
    try:
        for sheet in book.worksheets:
            # The declared dimension refuses an honest big sheet at once; the count
            # below catches one whose dimension lies.
            declared = (getattr(sheet, "max_row", 0) or 0) * (getattr(sheet, "max_column", 0) or 0)
            if seen[0] + declared > MAX_CELLS:
                raise too_many_cells("XLSX")
            # openpyxl stops at the declared last row; a sheet that under-declares would
            # lose its other rows without a word, so every row is read and counted.
            sheet.reset_dimensions()
            rows = counted(sheet.iter_rows(values_only=True), kind="XLSX", seen=seen)
            assembler.add_heading(sheet.title)
            assembler.add_section(title=sheet.title, text=render_rows(rows))
        title = collapse_title(book.properties.title if book.properties else None)
    finally:
        book.close()
    if not assembler.sections:
        raise ParseError("The spreadsheet has no cells with text or numbers.")
    return assembler.build(mime_type=XLSX_MIME, title=title)


def parse_csv(data: bytes) -> ParsedDocument:
    text = decode_text(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    seen = [0]
    try:
        rows = list(counted(csv.reader(io.StringIO(text), dialect), kind="CSV file", seen=seen))
    except csv.Error as err:
        raise ParseError(f"The CSV file could not be read: {err}.") from None
    assembler = TextAssembler()
    assembler.add_section(title="", text=render_rows(rows))
    if not assembler.sections:
        raise ParseError("The CSV file has no cells with text or numbers.")
    return assembler.build(mime_type=CSV_MIME, title=None)
