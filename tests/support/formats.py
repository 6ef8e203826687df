"""Files in every format issue 16 adds, built in code from known text (tests and
bench/formats.py). Each builder writes one file into `directory` and returns its path."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

SLIDES = [
    (
        "Quarterly review",
        "Revenue grew 12 percent in the third quarter.",
        "Mention the Oslo office.",
    ),
    ("Hiring plan", "Two platform engineers join in January.", "Budget approved by Ines."),
]
PLANS = [("Plan", "Price", "Seats"), ("A", "10 EUR", 5), ("B", "20 EUR", 25), ("C", "45 EUR", 100)]
SCAN_TEXT = [
    "The warehouse opens at seven in the morning and closes at six in the evening.",
    "Forklift drivers must renew their licence every three years at the Hamar depot.",
    "Report damaged pallets to the shift lead before the end of the shift.",
    "Visitors sign in at the front desk and wear a yellow vest at all times.",
]


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def make_pptx(directory: Path, *, name: str = "review.pptx") -> Path:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    deck.core_properties.title = "Quarterly review deck"
    for title, body, notes in SLIDES:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = notes
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Price list"
    table = slide.shapes.add_table(4, 3, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate(PLANS):
        for c, value in enumerate(row):
            table.cell(r, c).text = str(value)
    path = directory / name
    deck.save(str(path))
    return path


def make_big_xlsx(directory: Path, *, rows: int, declared: str, name: str = "big.xlsx") -> Path:
    """The plans workbook whose first sheet holds `rows` rows of three numbers and
    declares the dimension `declared` (Excel writes the true one; a crafted file may not).
    The sheet XML is written directly: openpyxl would take minutes for a million cells."""
    source = make_xlsx(directory, name=f"small-{name}")
    body = "".join(
        f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}"><v>1</v></c>'
        f'<c r="C{r}"><v>2</v></c></row>'
        for r in range(1, rows + 1)
    )
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{declared}"/><sheetData>{body}</sheetData></worksheet>'
    )
    path = directory / name
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.namelist():
            data = sheet.encode() if member == "xl/worksheets/sheet1.xml" else src.read(member)
            dst.writestr(member, data)
    source.unlink()
    return path


def make_xlsx(directory: Path, *, name: str = "plans.xlsx") -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Plans"
    for row in PLANS:
        sheet.append(list(row))
    other = book.create_sheet("Contacts")
    other.append(["Name", "Role"])
    other.append(["Ines Berg", "Finance lead"])
    path = directory / name
    book.save(path)
    return path


def make_csv(directory: Path, *, name: str = "plans.csv") -> Path:
    lines = [",".join(str(c) for c in row) for row in PLANS]
    return _write(directory, name, ("\n".join(lines) + "\n").encode())


def make_odt(directory: Path, *, name: str = "policy.odt") -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="Travel policy"))
    doc.text.addElement(P(text="Book trains for trips under five hours."))
    doc.text.addElement(H(outlinelevel=1, text="Expenses"))
    doc.text.addElement(P(text="Submit receipts within thirty days."))
    path = directory / name
    doc.save(str(path))
    return path


def make_ods(directory: Path, *, name: str = "plans.ods", repeated_rows: int = 0) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Plans")
    for values in PLANS:
        row = TableRow()
        for value in values:
            cell = TableCell()
            cell.addElement(P(text=str(value)))
            row.addElement(cell)
        table.addElement(row)
    if repeated_rows:
        # One row element that stands for many: how an ODS marks a filled-down column.
        row = TableRow(numberrowsrepeated=repeated_rows)
        cell = TableCell(numbercolumnsrepeated=1000)
        cell.addElement(P(text="x"))
        row.addElement(cell)
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    path = directory / name
    doc.save(str(path))
    return path


def make_odp(directory: Path, *, name: str = "review.odp") -> Path:
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.presentation import Notes
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    doc.masterstyles.addElement(master)

    def framed(text: str) -> Frame:
        frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
        box = TextBox()
        box.addElement(P(text=text))
        frame.addElement(box)
        return frame

    for title, body, notes in SLIDES:
        page = Page(masterpagename=master)
        page.addElement(framed(title))
        page.addElement(framed(body))
        note = Notes()
        note.addElement(framed(notes))
        page.addElement(note)
        doc.presentation.addElement(page)
    path = directory / name
    doc.save(str(path))
    return path


def make_rtf(directory: Path, *, name: str = "memo.rtf") -> Path:
    body = (
        r"{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}\f0 Parking memo\par "
        r"The garage closes at ten p.m.\par Caf\'e9 opens at eight.\par}"
    )
    return _write(directory, name, body.encode("ascii"))


def make_eml(
    directory: Path, *, name: str = "offer.eml", attachments: dict[str, bytes] | None = None
) -> Path:
    return _write(directory, name, eml_bytes(attachments=attachments))


def eml_bytes(
    *, attachments: dict[str, bytes] | None = None, subject: str = "Offer for Nordlys AS"
) -> bytes:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Ines Berg <ines@example.com>"
    message["To"] = "sales@example.com"
    message["Date"] = "Mon, 07 Dec 2026 09:00:00 +0100"
    message.set_content("Please find the price list attached. Plan B is our proposal.\n")
    for filename, data in (attachments or {}).items():
        message.add_attachment(
            data, maintype="application", subtype="octet-stream", filename=filename
        )
    return message.as_bytes()


def make_nested_eml(directory: Path, *, depth: int, name: str = "nested.eml") -> Path:
    """A message forwarded as an attachment `depth` times over."""
    inner = EmailMessage()
    inner["Subject"] = "Level 0"
    inner["From"] = "a@example.com"
    inner.set_content("The innermost message.\n")
    for level in range(1, depth + 1):
        outer = EmailMessage()
        outer["Subject"] = f"Level {level}"
        outer["From"] = "a@example.com"
        outer.set_content(f"Forwarding level {level - 1}.\n")
        outer.add_attachment(inner)
        inner = outer
    return _write(directory, name, inner.as_bytes())


def render_scan(lines: list[str], *, dpi: int = 300) -> object:
    """A page of text as a 300-dpi scanner would deliver it: grey, 12 pt, A4 width."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(8.27 * dpi), int(11.69 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, size=int(12 * dpi / 72))
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, fill=0, font=font)
        y += int(font.size * 1.8)
    return image


def make_scan_image(directory: Path, *, fmt: str = "PNG", name: str = "scan.png") -> Path:
    path = directory / name
    render_scan(SCAN_TEXT).save(path, format=fmt, dpi=(300, 300))  # type: ignore[attr-defined]
    return path


def make_scanned_text_pdf(directory: Path, *, pages: int = 2, name: str = "scan.pdf") -> Path:
    """Pages of rendered text as images only, no text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for _ in range(pages):
        png = io.BytesIO()
        render_scan(SCAN_TEXT).save(png, format="PNG")  # type: ignore[attr-defined]
        pdf.drawImage(ImageReader(io.BytesIO(png.getvalue())), 0, 0, width=A4[0], height=A4[1])
        pdf.showPage()
    pdf.save()
    return _write(directory, name, buffer.getvalue())


def make_table_pdf(directory: Path, *, name: str = "prices.pdf") -> Path:
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    buffer = io.BytesIO()
    styles = getSampleStyleSheet()
    table = Table([[str(c) for c in row] for row in PLANS])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    SimpleDocTemplate(buffer).build([Paragraph("Price list for 2027", styles["Heading1"]), table])
    return _write(directory, name, buffer.getvalue())


def make_encrypted_xlsx(directory: Path, *, name: str = "locked.xlsx") -> Path:
    import msoffcrypto.format.ooxml

    plain = make_xlsx(directory, name=f"plain-{name}")
    out = io.BytesIO()
    with plain.open("rb") as fh:
        msoffcrypto.format.ooxml.OOXMLFile(fh).encrypt("s3cret", out)
    plain.unlink()
    return _write(directory, name, out.getvalue())


def make_encrypted_odt(directory: Path, *, name: str = "locked.odt") -> Path:
    """An ODT whose manifest marks content.xml encrypted (how LibreOffice saves with a
    password); the content itself is random bytes, as encrypted content looks."""
    source = make_odt(directory, name=f"plain-{name}")
    path = directory / name
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for member in src.namelist():
            data = src.read(member)
            if member == "META-INF/manifest.xml":
                data = data.replace(
                    b'manifest:full-path="content.xml"',
                    b'manifest:full-path="content.xml"><manifest:encryption-data '
                    b'manifest:checksum-type="SHA1/1K" manifest:checksum="x"/></manifest:file-entry'
                    b'><manifest:file-entry manifest:media-type="" manifest:full-path="x"',
                )
            if member == "content.xml":
                data = bytes(range(256)) * 8
            dst.writestr(member, data)
    source.unlink()
    return path


def make_corrupt_xlsx(directory: Path, *, name: str = "broken.xlsx") -> Path:
    """The workbook part is cut in half: a sheet that Excel would call damaged."""
    source = make_xlsx(directory, name=f"whole-{name}")
    path = directory / name
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for member in src.namelist():
            data = src.read(member)
            if member == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            dst.writestr(member, data)
    source.unlink()
    return path


def make_zip_bomb_pptx(directory: Path, *, name: str = "bomb.pptx", megabytes: int = 300) -> Path:
    return pad_zip(make_pptx(directory, name=name), "ppt/media/padding.bin", megabytes=megabytes)


def pad_zip(path: Path, member_name: str, *, megabytes: int) -> Path:
    """Add a member of `megabytes` MB of zeros (~1 KB per MB on disk) to a zip."""
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(member_name, "w", force_zip64=True) as member:
            block = bytes(1024 * 1024)
            for _ in range(megabytes):
                member.write(block)
    return path


def make_bomb_png(directory: Path, *, side: int = 20_000, name: str = "huge.png") -> Path:
    """A PNG header that claims side × side pixels, a few hundred bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grey
    body = zlib.compress(b"\x00" * (side + 1) * 4)  # a few rows; nothing decodes further
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    return _write(directory, name, png)


def character_error_rate(known: str, read: str) -> float:
    """Edit distance between the texts over the known text's length, whitespace runs
    counted as one space (OCR's line breaks are layout, not errors)."""
    a, b = " ".join(known.split()), " ".join(read.split())
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(len(a), 1)
