"""Issue 16 formats through parse_file: what each yields, and each bad input's sentence.

Every fixture is built in code (tests/support/formats.py) from known text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.knowledge.parsers import ParsedDocument, ParseError, parse_file
from apps.knowledge.parsers.tables import MAX_CELLS
from tests.support import formats as fm

LIMIT = 200 * 1024 * 1024


def parse(path: Path) -> ParsedDocument:
    parsed = parse_file(path, max_unpacked_bytes=LIMIT)
    for section in parsed.sections:  # the parser contract: sections are slices of text
        assert parsed.text[section.start : section.start + len(section.text)] == section.text
    return parsed


def refusal(path: Path, *, limit: int = LIMIT) -> str:
    with pytest.raises(ParseError) as err:
        parse_file(path, max_unpacked_bytes=limit)
    return str(err.value)


def test_pptx_has_a_section_per_slide_with_its_speaker_notes(tmp_path: Path) -> None:
    parsed = parse(fm.make_pptx(tmp_path))

    assert parsed.title == "Quarterly review deck"
    assert [s.title for s in parsed.sections] == ["Quarterly review", "Hiring plan", "Price list"]
    assert [s.page for s in parsed.sections] == [1, 2, 3]
    assert "Speaker notes: Mention the Oslo office." in parsed.sections[0].text
    assert "Plan: B | Price: 20 EUR | Seats: 25" in parsed.sections[2].text


def test_xlsx_has_a_section_per_sheet_and_rows_name_their_columns(tmp_path: Path) -> None:
    parsed = parse(fm.make_xlsx(tmp_path))

    assert [s.title for s in parsed.sections] == ["Plans", "Contacts"]
    lines = parsed.sections[0].text.splitlines()
    assert lines[0] == "Plan | Price | Seats"
    assert "Plan: B | Price: 20 EUR | Seats: 25" in lines
    assert "Name: Ines Berg | Role: Finance lead" in parsed.sections[1].text


def test_csv_rows_name_their_columns(tmp_path: Path) -> None:
    parsed = parse(fm.make_csv(tmp_path))

    assert parsed.mime_type == "text/csv"
    assert "Plan: C | Price: 45 EUR | Seats: 100" in parsed.text.splitlines()


def test_odt_headings_start_sections(tmp_path: Path) -> None:
    parsed = parse(fm.make_odt(tmp_path))

    assert parsed.title == "Travel policy"
    assert [(s.title, s.text) for s in parsed.sections] == [
        ("Travel policy", "Book trains for trips under five hours."),
        ("Expenses", "Submit receipts within thirty days."),
    ]


def test_ods_sheet_rows_name_their_columns(tmp_path: Path) -> None:
    parsed = parse(fm.make_ods(tmp_path))

    assert parsed.sections[0].title == "Plans"
    assert "Plan: A | Price: 10 EUR | Seats: 5" in parsed.sections[0].text.splitlines()


def test_odp_has_a_section_per_slide_with_notes(tmp_path: Path) -> None:
    parsed = parse(fm.make_odp(tmp_path))

    assert [s.title for s in parsed.sections] == ["Quarterly review", "Hiring plan"]
    assert parsed.sections[1].text == (
        "Two platform engineers join in January.\n\nSpeaker notes: Budget approved by Ines."
    )


def test_rtf_is_read_with_its_escapes(tmp_path: Path) -> None:
    parsed = parse(fm.make_rtf(tmp_path))

    assert "The garage closes at ten p.m." in parsed.text
    assert "Café opens at eight." in parsed.text
    assert "\\par" not in parsed.text


def test_pdf_table_keeps_rows_with_their_header(tmp_path: Path) -> None:
    parsed = parse(fm.make_table_pdf(tmp_path))

    lines = parsed.text.splitlines()
    assert "Price list for 2027" in lines
    assert "Plan | Price | Seats" in lines
    assert "Plan: B | Price: 20 EUR | Seats: 25" in lines


def test_eml_keeps_its_fields_and_hands_back_attachments(tmp_path: Path) -> None:
    csv = fm.make_csv(tmp_path).read_bytes()
    parsed = parse(fm.make_eml(tmp_path, attachments={"prices.csv": csv}))

    assert parsed.mime_type == "message/rfc822"
    assert parsed.title == "Offer for Nordlys AS"
    assert parsed.metadata["from"] == "Ines Berg <ines@example.com>"
    assert parsed.metadata["to"] == "sales@example.com"
    assert parsed.metadata["date"].startswith("Mon, 07 Dec 2026")
    assert "Plan B is our proposal." in parsed.text
    assert [(a.name, a.data) for a in parsed.attachments] == [("prices.csv", csv)]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("app.js", b"// Leave is booked in the HR portal.\nconst days = 27;\n"),
        ("leave.json", b'{"leave_days": 27, "note": "booked in the HR portal"}\n'),
        ("deploy.yaml", b"service: portal\nreplicas: 2\n"),
        ("run.sh", b"#!/bin/sh\necho 'the portal restarts at 02:00'\n"),
        ("rows.xml", b'<?xml version="1.0"?>\n<rows><row a="1">portal</row></rows>\n'),
        ("app.log", b"2026-12-07 06:00:01 INFO portal started on port 8080\n"),
    ],
)
def test_text_is_text_whatever_libmagic_calls_it(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    parsed = parse(path)
    assert content.decode().strip() in parsed.text


def test_a_binary_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x00\x01\x02binary\x00" * 20)

    assert "cannot be indexed" in refusal(path)


# --- bad input ----------------------------------------------------------------------------


def test_password_protected_xlsx_asks_for_the_password_to_be_removed(tmp_path: Path) -> None:
    assert refusal(fm.make_encrypted_xlsx(tmp_path)) == (
        "The Office file is password-protected; open it, remove the password "
        "(save without encryption) and upload it again."
    )


def test_password_protected_odt_asks_for_the_password_to_be_removed(tmp_path: Path) -> None:
    assert refusal(fm.make_encrypted_odt(tmp_path)).startswith(
        "The ODT file is password-protected;"
    )


def test_corrupt_sheet_is_called_damaged(tmp_path: Path) -> None:
    message = refusal(fm.make_corrupt_xlsx(tmp_path))
    assert message.startswith("The XLSX file could not be read: it looks damaged (")
    assert str(tmp_path) not in message


def test_a_sheet_declaring_more_cells_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = fm.make_big_xlsx(tmp_path, rows=10, declared="A1:C400000")  # 1.2 M cells declared
    assert refusal(path) == (
        f"The XLSX holds more than {MAX_CELLS:,} cells, the limit for one document; "
        "split it into smaller files, or export only the rows worth searching."
    )


def test_a_sheet_whose_dimension_lies_is_stopped_by_the_count(tmp_path: Path) -> None:
    # Declares 4 rows, holds 1,000,002 cells: counting them as read finds out.
    path = fm.make_big_xlsx(tmp_path, rows=MAX_CELLS // 3 + 1, declared="A1:C4")
    assert f"more than {MAX_CELLS:,} cells" in refusal(path)


def test_an_ods_row_repeated_a_million_times_is_capped(tmp_path: Path) -> None:
    # 1,048,576 rows × 1,000 columns in a few hundred bytes; expanding it would not end.
    message = refusal(fm.make_ods(tmp_path, repeated_rows=1_048_576))
    assert f"more than {MAX_CELLS:,} cells" in message


def test_zip_bomb_pptx_is_refused_from_the_directory(tmp_path: Path) -> None:
    message = refusal(fm.make_zip_bomb_pptx(tmp_path, megabytes=60), limit=50 * 1024 * 1024)
    assert message.startswith("The PPTX would unpack to ")
    assert message.endswith("over the 50 MB limit; it may be a zip bomb.")


def test_zip_bomb_odt_is_refused_by_its_ratio(tmp_path: Path) -> None:
    path = fm.pad_zip(fm.make_odt(tmp_path), "Pictures/padding.bin", megabytes=20)
    message = refusal(path)
    assert "it may be a zip bomb" in message and "a ratio of" in message


def test_email_nested_past_the_depth_limit_is_refused(tmp_path: Path) -> None:
    assert refusal(fm.make_nested_eml(tmp_path, depth=7)) == (
        "The e-mail nests messages 7 levels deep, past the limit of 5; "
        "forward the innermost message on its own and upload that."
    )


def test_email_nested_within_the_limit_is_read(tmp_path: Path) -> None:
    parsed = parse(fm.make_nested_eml(tmp_path, depth=2))
    assert parsed.title == "Level 2"
    assert [a.name for a in parsed.attachments] == ["Level 1.eml"]


def test_decompression_bomb_image_is_refused_before_decoding(tmp_path: Path) -> None:
    assert refusal(fm.make_bomb_png(tmp_path)) == (
        "The image is over the limit of 80,000,000 pixels; it may be a decompression "
        "bomb. Scan at 300 dpi and upload it again."
    )


def test_an_image_just_over_the_pixel_cap_says_its_size(tmp_path: Path) -> None:
    # Under Pillow's own bomb guard (2× its limit), over ours: our check names the size.
    message = refusal(fm.make_bomb_png(tmp_path, side=10_000))
    assert message.startswith("The image is 10,000 × 10,000 pixels, over the limit of")


def test_parse_file_command_prints_type_pages_sections_and_text(tmp_path: Path) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("parse_file", str(fm.make_pptx(tmp_path)), stdout=out)
    printed = out.getvalue()
    assert "detected type: application/vnd.openxmlformats-officedocument.presentationml" in printed
    assert "pages:         3" in printed
    assert "    2. Hiring plan (page 2, " in printed
    assert "--- text ---\nSlide 1: Quarterly review" in printed


def test_parse_file_command_says_why_a_file_is_refused(tmp_path: Path) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as err:
        call_command("parse_file", str(fm.make_encrypted_xlsx(tmp_path)))
    assert "password-protected" in str(err.value)


def test_outlook_msg_keeps_its_fields_and_hands_back_attachments(tmp_path: Path) -> None:
    from tests.support.msg import make_msg

    csv = fm.make_csv(tmp_path).read_bytes()
    parsed = parse(make_msg(tmp_path, attachments={"prices.csv": csv}))

    assert parsed.mime_type == "application/vnd.ms-outlook"
    assert parsed.title == "Offer for Nordlys AS"
    assert parsed.metadata == {
        "subject": "Offer for Nordlys AS",
        "from": "Ines Berg <ines@example.com>",
        "to": "sales@example.com",
        "date": "Mon, 07 Dec 2026 09:00:00 +0100",
    }
    assert "Plan B is our proposal." in parsed.text
    assert [(a.name, a.data) for a in parsed.attachments] == [("prices.csv", csv)]


def test_a_truncated_outlook_msg_is_refused_with_what_it_may_be(tmp_path: Path) -> None:
    from tests.support.msg import make_msg

    path = make_msg(tmp_path, attachments={})
    path.write_bytes(path.read_bytes()[:1536])  # header, FAT and half the directory
    assert refusal(path).startswith(
        "This file is a compound file that is no Outlook message Enclave can read (an old "
        "Office format, or damaged) (application/x-ole-storage), which Enclave cannot index;"
    )
