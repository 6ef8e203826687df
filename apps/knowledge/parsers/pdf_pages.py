"""What pypdf's text layer misses on a PDF page: tables (pdfplumber keeps their rows and
header) and pages with no text layer at all (rendered at 300 dpi by pdfium, read by OCR)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from apps.knowledge.parsers.image import check_pixels
from apps.knowledge.parsers.ocr import OcrPage, ocr_pages
from apps.knowledge.parsers.tables import render_rows

logger = logging.getLogger(__name__)

OCR_DPI = 300


def page_tables(path: Path, page_count: int) -> dict[int, str]:
    """1-based page → the page's text with each ruled table rendered row by row with its
    header, for pages that have a table. Any pdfplumber failure leaves pypdf's text."""
    import pdfplumber  # heavy: pdfplumber loads pdfminer.six

    found: dict[int, str] = {}
    try:
        with pdfplumber.open(path) as pdf:
            for number, page in enumerate(pdf.pages[:page_count], start=1):
                tables = page.find_tables()
                if not tables:
                    page.close()
                    continue
                outside = page
                for table in tables:
                    outside = outside.outside_bbox(table.bbox)
                parts = [outside.extract_text() or ""]
                parts.extend(render_rows(t.extract()) for t in tables)
                found[number] = "\n\n".join(p.strip() for p in parts if p.strip())
                page.close()
    except Exception:
        logger.info("pdfplumber could not read the tables of %s", path.name, exc_info=True)
        return {}
    return found


def ocr_pdf_pages(
    path: Path, pages: list[int], *, workers: int | None = None
) -> dict[int, OcrPage]:
    """OCR the given 1-based pages, rendered at OCR_DPI in grey."""
    import pypdfium2  # heavy: pdfium's native library

    document: Any = pypdfium2.PdfDocument(str(path))
    scale = OCR_DPI / 72

    def render(number: int) -> Any:
        page = document[number - 1]
        width, height = page.get_size()
        check_pixels(
            int(width * scale), int(height * scale), what=f"Page {number} at {OCR_DPI} dpi"
        )
        bitmap = page.render(scale=scale, grayscale=True)
        return bitmap.to_pil()

    try:
        return ocr_pages(pages, render, workers=workers)
    finally:
        document.close()
