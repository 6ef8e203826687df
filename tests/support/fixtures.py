"""Builders for real document files, written at test time into a directory you give.

Every builder is `make_x(directory, *, name=...) -> Path`. Nothing binary is checked in:
PDFs come from reportlab, DOCX files from python-docx, the rest are bytes we write.

The known content is exported (GOOD_PDF_PAGES, GOOD_DOCX_SECTIONS, ...) so tests assert
on what the parser really extracted, not on what a builder returned.

BAD_INPUTS maps a name to a builder of a file that must fail ingestion, and
BAD_INPUT_MESSAGES to a fragment of the sentence the admin should then see.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

# --- known content -------------------------------------------------------------------------

GOOD_PDF_TITLE = "Pathfinder Field Notes"
# Per page, the (outline title, text) entries drawn on it: a heading line, then one line
# of text. The last page holds two, so a page split by its outline can be tested.
GOOD_PDF_PAGES = [
    [("Battery", "The Pathfinder battery lasts nine hours on a single charge.")],
    [("Payload", "Each robot carries up to 150 kilograms on its top deck.")],
    [
        ("Safety", "Pathfinder is certified to ISO 3691-4 for driverless trucks."),
        ("Support", "Call the support line on extension 4400 at any hour."),
    ],
]
ENCRYPTED_PDF_PASSWORD = "correct-horse-7"

GOOD_DOCX_TITLE = "Onboarding Checklist"
GOOD_DOCX_SECTIONS = [
    # (heading, style, paragraphs)
    ("Onboarding Checklist", "Title", ["Welcome to the warehouse operations team."]),
    ("First Day", "Heading 1", ["Collect your badge from reception at 9:00."]),
    ("Equipment", "Heading 2", ["Laptops are issued by the IT desk on level 2."]),
]
# Rows of the table placed under "Equipment".
GOOD_DOCX_TABLE = [
    ("Item", "Owner"),
    ("Laptop", "IT desk"),
    ("Safety boots", "Facilities"),
]

GOOD_HTML_TITLE = "VPN help"
GOOD_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <title>VPN help</title>
  <style>body { color: red; }</style>
  <script>var secret = "script text must not be indexed";</script>
</head>
<body>
  <noscript>Enable JavaScript please</noscript>
  <p>Read this   before
     travelling.</p>
  <h1>Connecting</h1>
  <p>Open the <b>Northgate</b> client and choose <i>Office</i>.</p>
  <ul><li>Windows: tray icon</li><li>macOS: menu bar</li></ul>
  <h2>Resetting a password</h2>
  <p>Visit the self-service portal.<br>It takes two minutes.</p>
  <table><tr><th>Site</th><th>Gateway</th></tr><tr><td>Leeds</td><td>vpn-lds</td></tr></table>
</body>
</html>
"""

GOOD_MARKDOWN = """---
author: People Team
---
Intro text before any heading.

# Employee Handbook

Welcome aboard.

## Annual leave

You get 27 days of leave a year.
Ask your manager in the portal.

```bash
# this is a shell comment, not a heading
echo hello
```

Travel and expenses
-------------------

Economy class for flights under six hours.

### Empty heading follows

###

Last words.
"""
GOOD_MARKDOWN_SECTIONS = [
    ("", "Intro text before any heading."),
    ("Employee Handbook", "Welcome aboard."),
    ("Annual leave", "You get 27 days of leave a year."),
    ("Travel and expenses", "Economy class for flights under six hours."),
    ("", "Last words."),
]

GOOD_TEXT = "Salary review happens in March.\n\nBands are published in April.\n"

# --- small helpers -------------------------------------------------------------------------


def _write(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def _pdf_bytes_with_pages() -> bytes:
    import io

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(GOOD_PDF_TITLE)
    pdf.setAuthor("Northwind Robotics")
    for number, entries in enumerate(GOOD_PDF_PAGES, start=1):
        y = 770
        for heading, text in entries:
            key = f"p{number}-{heading}"
            pdf.bookmarkPage(key, fit="XYZ", top=y + 20)
            pdf.addOutlineEntry(heading, key, level=0)
            pdf.setFont("Helvetica-Bold", 16)
            pdf.drawString(72, y, heading)
            pdf.setFont("Helvetica", 11)
            pdf.drawString(72, y - 30, text)
            y -= 100
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _docx_document() -> object:
    import docx

    document = docx.Document()
    for heading, style, paragraphs in GOOD_DOCX_SECTIONS:
        document.add_paragraph(heading, style=style)
        for text in paragraphs:
            document.add_paragraph(text)
    table = document.add_table(rows=0, cols=2)
    for left, right in GOOD_DOCX_TABLE:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = left, right
    document.add_paragraph("Ask your buddy if anything is missing.")
    return document


# --- good files ----------------------------------------------------------------------------


def make_good_pdf(directory: Path, *, name: str = "good.pdf") -> Path:
    """Three pages, an outline entry per heading, metadata title GOOD_PDF_TITLE."""
    return _write(directory, name, _pdf_bytes_with_pages())


def make_owner_locked_pdf(directory: Path, *, name: str = "owner-locked.pdf") -> Path:
    """Encrypted with an owner password only: the empty user password opens it."""
    return _encrypt(make_good_pdf(directory, name=name), user_password="")


def make_good_docx(directory: Path, *, name: str = "good.docx") -> Path:
    """Title + two headings, a 3x2 table under the last heading, a closing paragraph."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    _docx_document().save(str(path))  # type: ignore[attr-defined]
    return path


def make_docx_in_plain_zip(directory: Path, *, name: str = "rezipped.docx") -> Path:
    """The good DOCX re-zipped with docProps/ first and [Content_Types].xml last, as
    some tools write it; libmagic (5.44) no longer sees Word in it and reports
    application/octet-stream."""
    source = make_good_docx(directory, name=f"source-{name}")
    path = directory / name
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        names = sorted(
            src.namelist(),
            key=lambda n: (n == "[Content_Types].xml", not n.startswith("docProps/"), n),
        )
        for member in names:
            dst.writestr(member, src.read(member))
    source.unlink()
    return path


def make_html(directory: Path, *, name: str = "vpn.html") -> Path:
    return _write(directory, name, GOOD_HTML.encode("utf-8"))


def make_markdown(directory: Path, *, name: str = "handbook.md") -> Path:
    return _write(directory, name, GOOD_MARKDOWN.encode("utf-8"))


def make_plain_text(directory: Path, *, name: str = "notes.txt") -> Path:
    return _write(directory, name, GOOD_TEXT.encode("utf-8"))


def make_utf8_bom_text(directory: Path, *, name: str = "bom.txt") -> Path:
    return _write(directory, name, b"\xef\xbb\xbf" + GOOD_TEXT.encode("utf-8"))


def make_utf16_text(directory: Path, *, name: str = "utf16.txt") -> Path:
    """UTF-16 little-endian with its BOM, CRLF line endings (as Notepad saves it)."""
    return _write(directory, name, GOOD_TEXT.replace("\n", "\r\n").encode("utf-16"))


# --- bad files -----------------------------------------------------------------------------


def make_scanned_pdf(directory: Path, *, name: str = "scanned.pdf") -> Path:
    """Two pages of drawings and a raster image, no text layer: what a scanner makes."""
    import io

    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = ImageReader(io.BytesIO(_png_bytes(width=8, height=8)))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for _ in range(2):
        pdf.drawImage(image, 72, 500, width=300, height=300)
        pdf.rect(72, 100, 200, 100, fill=1)
        pdf.circle(300, 200, 50)
        pdf.showPage()
    pdf.save()
    return _write(directory, name, buffer.getvalue())


def make_encrypted_pdf(directory: Path, *, name: str = "encrypted.pdf") -> Path:
    """Needs ENCRYPTED_PDF_PASSWORD to open. RC4-128 because AES needs `cryptography`,
    which is not installed; the parser must refuse either."""
    return _encrypt(make_good_pdf(directory, name=name), user_password=ENCRYPTED_PDF_PASSWORD)


def _encrypt(path: Path, *, user_password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(path))
    writer.encrypt(
        user_password=user_password, owner_password="owner-" + "x" * 8, algorithm="RC4-128"
    )
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def make_corrupt_pdf(directory: Path, *, name: str = "corrupt.pdf") -> Path:
    """Starts like a PDF (so libmagic says application/pdf) but has no usable body."""
    good = _pdf_bytes_with_pages()
    return _write(directory, name, good[:300] + b"\x00garbage\xff" * 50)


def make_zip_bomb_docx(directory: Path, *, name: str = "bomb.docx") -> Path:
    """A valid DOCX plus one member of 300 MB of zeros (~300 KB on disk, under a second
    to write). Parsers must refuse it from the zip directory alone."""
    from tests.support.formats import pad_zip

    path = make_good_docx(directory, name=name)
    return pad_zip(path, "word/media/padding.bin", megabytes=ZIP_BOMB_MEGABYTES)


ZIP_BOMB_MEGABYTES = 300


def make_macro_docm(directory: Path, *, name: str = "budget.docx") -> Path:
    """The good DOCX relabelled as macro-enabled (a .docm saved under a .docx name):
    libmagic still says Word, python-docx refuses it by content type."""
    source = make_good_docx(directory, name=f"source-{name}")
    path = directory / name
    word_main = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    macro_main = b"application/vnd.ms-word.document.macroEnabled.main+xml"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.namelist():
            data = src.read(member)
            if member == "[Content_Types].xml":
                data = data.replace(word_main, macro_main)
            dst.writestr(member, data)
    source.unlink()
    return path


def make_latin1_text(directory: Path, *, name: str = "latin1.txt") -> Path:
    """cp1252 bytes (curly quotes, é): invalid UTF-8 at byte LATIN1_BAD_BYTE."""
    text = "Expenses policy for the caf\u00e9: \u201creceipts\u201d are required.\n"
    return _write(directory, name, text.encode("cp1252"))


LATIN1_BAD_BYTE = len("Expenses policy for the caf")


def make_empty_file(directory: Path, *, name: str = "empty.pdf") -> Path:
    return _write(directory, name, b"")


def _pe_executable() -> bytes:
    """A minimal PE32 console program header: MZ stub, PE signature, COFF header and an
    optional header. libmagic reads it as "PE32 executable (console) Intel 80386"."""
    dos = bytearray(64)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, len(dos))  # e_lfanew: where the PE header starts
    machine_i386, characteristics = 0x014C, 0x0102  # executable image, 32-bit machine
    optional_size = 0xE0
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", machine_i386, 0, 0, 0, 0, optional_size,
                                   characteristics)  # fmt: skip
    optional = bytearray(optional_size)
    struct.pack_into("<H", optional, 0, 0x010B)  # PE32 magic
    struct.pack_into("<H", optional, 68, 3)  # subsystem: Windows console
    return bytes(dos) + coff + bytes(optional) + bytes(512)


def make_exe_named_pdf(directory: Path, *, name: str = "invoice.pdf") -> Path:
    return _write(directory, name, _pe_executable())


def _png_bytes(*, width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + bytes([40, 90, 160]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_png_named_docx(directory: Path, *, name: str = "scan.docx") -> Path:
    return _write(directory, name, _png_bytes(width=4, height=4))


def make_zip_archive(directory: Path, *, name: str = "bundle.docx") -> Path:
    """A plain zip of text files, named like a DOCX."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "not a word document\n")
    return path


def make_sized_file(directory: Path, *, size: int, name: str = "large.pdf") -> Path:
    """A sparse file of exactly `size` bytes starting like a PDF, for size-cap tests:
    it takes no disk space and no time whatever the size."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with path.open("wb") as fh:
        fh.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        fh.truncate(size)
    return path


# --- the catalogue for ingestion tests -------------------------------------------------------

Builder = Callable[[Path], Path]

BAD_INPUTS: dict[str, Builder] = {
    "scanned_pdf": make_scanned_pdf,
    "encrypted_pdf": make_encrypted_pdf,
    "corrupt_pdf": make_corrupt_pdf,
    "zip_bomb_docx": make_zip_bomb_docx,
    "macro_docm": make_macro_docm,
    "latin1_text": make_latin1_text,
    "empty_file": make_empty_file,
    "exe_named_pdf": make_exe_named_pdf,
    "png_named_docx": make_png_named_docx,
    "zip_named_docx": make_zip_archive,
}

# A fragment of the sentence each bad input must produce (with the default 200 MB unpack
# limit for the zip bomb).
BAD_INPUT_MESSAGES: dict[str, str] = {
    "scanned_pdf": "The PDF has no text, not even by OCR of its pages;",
    "encrypted_pdf": "PDF is encrypted; remove the password and upload it again.",
    "corrupt_pdf": "The PDF file could not be read: it looks damaged",
    "zip_bomb_docx": "over the 200 MB limit; it may be a zip bomb.",
    "macro_docm": "is a macro-enabled document or a template",
    "latin1_text": f"The text is not valid UTF-8 (first bad byte at position {LATIN1_BAD_BYTE})",
    "empty_file": "The file is empty.",
    "exe_named_pdf": "This file is a Windows executable",
    "png_named_docx": "OCR found no text in the image;",
    "zip_named_docx": "This file is a zip archive (application/zip), not a document.",
}
