"""PNG, JPEG and TIFF: each image (each TIFF frame) is a page read by OCR."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from apps.knowledge.parsers.base import ParsedDocument, ParseError, TextAssembler
from apps.knowledge.parsers.ocr import ocr_pages, ocr_report

IMAGE_MIMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}

# A page at 600 dpi on A3 is ~70 million pixels; a 20,000 × 20,000 "image" of a few KB
# would decode to 400 MB per channel. Checked from the header, before any decoding.
MAX_PIXELS = 80_000_000
MAX_FRAMES = 500


def check_pixels(width: int, height: int, *, what: str) -> None:
    if width * height > MAX_PIXELS:
        raise ParseError(
            f"{what} is {width:,} × {height:,} pixels, over the limit of "
            f"{MAX_PIXELS:,} pixels; it may be a decompression bomb. Scan at 300 dpi "
            "and upload it again."
        )


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError  # heavy: Pillow's plugins

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, for what we did not check
    try:
        with warnings.catch_warnings():
            # Pillow warns between its limit and twice it; check_pixels says it in words.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError:
        raise ParseError(
            f"The image is over the limit of {MAX_PIXELS:,} pixels; it may be a "
            "decompression bomb. Scan at 300 dpi and upload it again."
        ) from None
    except (UnidentifiedImageError, OSError) as err:
        raise ParseError(f"The image could not be read: it looks damaged ({err}).") from None


def parse_image(path: Path, *, mime: str) -> ParsedDocument:
    image = _open(path)
    frames = min(getattr(image, "n_frames", 1), MAX_FRAMES)
    for number in range(frames):
        image.seek(number)
        check_pixels(
            *image.size, what=f"Page {number + 1} of the image" if frames > 1 else "The image"
        )

    def render(page: int) -> Any:
        image.seek(page - 1)
        frame = image.convert("L")
        return frame

    try:
        results = ocr_pages(list(range(1, frames + 1)), render)
    finally:
        image.close()
    assembler = TextAssembler()
    for page, result in sorted(results.items()):
        assembler.add_section(title="", text=result.text, page=page)
    if not assembler.sections:
        raise ParseError(
            "OCR found no text in the image; if it is a scan, scan it at 300 dpi and "
            "upload it again."
        )
    return assembler.build(mime_type=mime, title=None, ocr=ocr_report(results))
