"""Tesseract OCR for scanned pages and images (Debian's `tesseract-ocr`, run as a process).

    page = ocr_image(image)   # a PIL image → OcrPage(text, confidence)

Each page is one `tesseract` process with a time limit (OCR_PAGE_TIMEOUT_SECONDS), so a
page that would take forever fails that document with a sentence and nothing else.
Tesseract's TSV output gives each word's confidence; the page's is their mean. Pages
run in parallel, one per core, each single-threaded (OMP_THREAD_LIMIT=1): on 2 cores
two single-threaded pages beat one page on two threads.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

from apps.knowledge.parsers.base import OcrReport, ParseError

if TYPE_CHECKING:
    from PIL.Image import Image

TESSERACT = "tesseract"
NOT_INSTALLED = (
    "This file needs OCR, but Tesseract is not installed on the server; "
    "run `make ocr` (it installs Debian's tesseract-ocr) and re-ingest the document."
)


@dataclass(frozen=True)
class OcrPage:
    text: str
    confidence: float  # mean word confidence, 0-100; 0 when no word was found
    words: int


def page_timeout() -> float:
    return float(getattr(settings, "OCR_PAGE_TIMEOUT_SECONDS", 60))


def ocr_available() -> bool:
    return shutil.which(TESSERACT) is not None


def _png(image: Image) -> bytes:
    if image.mode not in ("L", "RGB", "1"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _from_tsv(tsv: str) -> OcrPage:
    """Words back into lines and paragraphs, in Tesseract's reading order."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":  # level 5 is a word
            continue
        word = cols[11].strip()
        if not word:
            continue
        key = (int(cols[2]), int(cols[3]), int(cols[4]))  # block, paragraph, line
        lines.setdefault(key, []).append(word)
        conf = float(cols[10])
        if conf >= 0:
            confidences.append(conf)
    parts: list[str] = []
    previous: tuple[int, int] | None = None
    for (block, par, _line), words in lines.items():
        if previous is not None:
            parts.append("\n" if previous == (block, par) else "\n\n")
        parts.append(" ".join(words))
        previous = (block, par)
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return OcrPage(text="".join(parts), confidence=round(mean, 1), words=len(confidences))


def ocr_image(image: Image, *, page: int | None = None) -> OcrPage:
    """OCR one page image; raises ParseError on a timeout or a Tesseract failure."""
    if not ocr_available():
        raise ParseError(NOT_INSTALLED)
    timeout = page_timeout()
    where = f"page {page}" if page is not None else "the image"
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [TESSERACT, "stdin", "stdout", "-l", "eng", "--psm", "3", "tsv"],
            input=_png(image),
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ParseError(
            f"OCR of {where} took longer than {timeout:g} seconds, the per-page limit "
            "(OCR_PAGE_TIMEOUT_SECONDS); scan it at 300 dpi or split the file."
        ) from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ParseError(
            f"OCR of {where} failed ({reason[-1] if reason else 'tesseract exited '}"
            f"{'' if reason else done.returncode})."
        )
    return _from_tsv(done.stdout.decode("utf-8", "replace"))


def ocr_pages(
    pages: list[int], render: Callable[[int], Image], *, workers: int | None = None
) -> dict[int, OcrPage]:
    """OCR numbered pages, one per core at a time; page number → result. `render` is
    called under a lock (pdfium is not thread-safe) and one page image per core is
    held at a time, so a long scan does not sit in memory whole."""
    lock = threading.Lock()

    def one(number: int) -> tuple[int, OcrPage]:
        with lock:
            image = render(number)
        try:
            return number, ocr_image(image, page=number)
        finally:
            image.close()

    workers = max(1, min(len(pages), workers or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, pages))


def ocr_report(results: dict[int, OcrPage]) -> OcrReport | None:
    """The pages OCR found words on and their mean confidence; None if it found none."""
    read = {n: r for n, r in results.items() if r.words}
    if not read:
        return None
    mean = sum(r.confidence for r in read.values()) / len(read)
    return OcrReport(pages=tuple(sorted(read)), confidence=round(mean, 1))
