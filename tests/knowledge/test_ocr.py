"""Tesseract OCR (Debian's tesseract-ocr, `make ocr`): scans read back close to the text
they were rendered from, page numbers kept, confidence recorded, a per-page time limit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from apps.knowledge.parsers import ParseError, parse_file
from tests.support import formats as fm
from tests.support.formats import character_error_rate

LIMIT = 200 * 1024 * 1024

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed; run `make ocr`"
)
KNOWN = "\n".join(fm.SCAN_TEXT)


@pytest.mark.parametrize(
    ("fmt", "name"), [("PNG", "scan.png"), ("JPEG", "scan.jpg"), ("TIFF", "scan.tif")]
)
def test_a_300_dpi_image_is_read_within_the_error_goal(tmp_path: Path, fmt: str, name: str) -> None:
    parsed = parse_file(fm.make_scan_image(tmp_path, fmt=fmt, name=name), max_unpacked_bytes=LIMIT)

    assert parsed.ocr is not None and parsed.ocr.pages == (1,)
    assert parsed.ocr.confidence > 80
    assert [s.page for s in parsed.sections] == [1]
    assert character_error_rate(KNOWN, parsed.text) <= 0.03


def test_a_scanned_pdf_keeps_its_page_numbers(tmp_path: Path) -> None:
    parsed = parse_file(fm.make_scanned_text_pdf(tmp_path, pages=3), max_unpacked_bytes=LIMIT)

    assert parsed.ocr is not None and parsed.ocr.pages == (1, 2, 3)
    assert sorted({s.page for s in parsed.sections}) == [1, 2, 3]
    page_two = "\n".join(s.text for s in parsed.sections if s.page == 2)
    assert character_error_rate(KNOWN, page_two) <= 0.03


def test_a_pdf_with_a_text_layer_is_not_ocred(tmp_path: Path) -> None:
    parsed = parse_file(fm.make_table_pdf(tmp_path), max_unpacked_bytes=LIMIT)
    assert parsed.ocr is None


def test_ocr_past_the_per_page_limit_fails_with_a_sentence(tmp_path: Path, settings) -> None:
    settings.OCR_PAGE_TIMEOUT_SECONDS = 0.05  # a full 300-dpi page takes ~0.5 s here
    with pytest.raises(ParseError) as err:
        parse_file(fm.make_scanned_text_pdf(tmp_path, pages=1), max_unpacked_bytes=LIMIT)
    assert str(err.value) == (
        "OCR of page 1 took longer than 0.05 seconds, the per-page limit "
        "(OCR_PAGE_TIMEOUT_SECONDS); scan it at 300 dpi or split the file."
    )
