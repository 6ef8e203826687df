"""The parser registry: real files in, sections with true offsets (or one sentence) out.

No database: these run under pytest-django settings but never touch the models.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.knowledge.parsers import (
    SUPPORTED_TYPES_SENTENCE,
    ParsedDocument,
    ParseError,
    parse_file,
    sniff_mime,
)
from apps.knowledge.parsers.html import parse_html_text
from apps.knowledge.parsers.text import decode_text, parse_text
from tests.support import fixtures as fx

LIMIT = 200 * 1024 * 1024
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def parse(path: Path, *, limit: int = LIMIT) -> ParsedDocument:
    parsed = parse_file(path, max_unpacked_bytes=limit)
    assert_offsets_true(parsed)
    return parsed


def assert_offsets_true(parsed: ParsedDocument) -> None:
    previous_end = 0
    for section in parsed.sections:
        assert section.text.strip(), f"blank section {section!r}"
        assert parsed.text[section.start : section.start + len(section.text)] == section.text
        assert section.start >= previous_end, "sections overlap or are out of order"
        previous_end = section.start + len(section.text)


def one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".")


# --- PDF ---------------------------------------------------------------------------------


def test_pdf_has_a_section_per_page_with_its_page_number(tmp_path: Path) -> None:
    parsed = parse(fx.make_good_pdf(tmp_path))

    assert parsed.mime_type == "application/pdf"
    assert [s.page for s in parsed.sections] == [1, 2, 3, 3]
    assert parsed.sections[0].text == "The Pathfinder battery lasts nine hours on a single charge."
    assert "150 kilograms" in parsed.sections[1].text
    assert "ISO 3691-4" in parsed.sections[2].text
    assert "extension 4400" not in parsed.sections[2].text
    assert "extension 4400" in parsed.sections[3].text


def test_pdf_pages_are_split_and_titled_by_the_outline(tmp_path: Path) -> None:
    parsed = parse(fx.make_good_pdf(tmp_path))

    assert [s.title for s in parsed.sections] == ["Battery", "Payload", "Safety", "Support"]
    assert parsed.title == "Pathfinder Field Notes"
    # The heading lines stay in the document text, between the sections.
    assert "Support\n\nCall the support line" in parsed.text


def test_pdf_placeholder_metadata_title_is_no_title(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)  # reportlab writes /Title (untitled) by default
    pdf.drawString(72, 720, "Forklift lanes are marked in yellow.")
    pdf.save()
    path = tmp_path / "plain.pdf"
    path.write_bytes(buffer.getvalue())

    parsed = parse(path)

    assert parsed.title is None
    assert parsed.sections[0].title == ""
    assert "marked in yellow" in parsed.text


def test_pdf_locked_only_by_an_owner_password_opens_with_the_empty_password(
    tmp_path: Path,
) -> None:
    parsed = parse(fx.make_owner_locked_pdf(tmp_path))

    assert "ISO 3691-4" in parsed.sections[2].text
    assert parsed.title == "Pathfinder Field Notes"


def test_encrypted_pdf_asks_for_the_password_to_be_removed(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as err:
        parse(fx.make_encrypted_pdf(tmp_path))
    assert str(err.value) == "PDF is encrypted; remove the password and upload it again."


def test_pdf_without_a_text_layer_and_no_words_to_ocr_says_so(tmp_path: Path) -> None:
    # Drawings only: OCR runs on both pages and finds nothing to read.
    with pytest.raises(ParseError) as err:
        parse(fx.make_scanned_pdf(tmp_path))
    assert str(err.value) == (
        "The PDF has no text, not even by OCR of its pages; if it is a scan, scan it again "
        "at 300 dpi and upload it again."
    )


def test_corrupt_pdf_is_called_damaged_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as err:
        parse(fx.make_corrupt_pdf(tmp_path))
    assert str(err.value).startswith("The PDF file could not be read: it looks damaged (")
    one_sentence(str(err.value))


# --- DOCX --------------------------------------------------------------------------------


def test_docx_headings_start_sections_and_table_text_is_kept(tmp_path: Path) -> None:
    parsed = parse(fx.make_good_docx(tmp_path))

    assert parsed.mime_type == DOCX
    assert [s.title for s in parsed.sections] == ["Onboarding Checklist", "First Day", "Equipment"]
    assert parsed.sections[1].text == "Collect your badge from reception at 9:00."
    equipment = parsed.sections[2].text
    assert "Laptop | IT desk" in equipment
    assert "Safety boots | Facilities" in equipment
    assert equipment.endswith("Ask your buddy if anything is missing.")
    assert all(s.page is None for s in parsed.sections)
    # Headings read in the document text but belong to no section body.
    assert "First Day\n\nCollect your badge" in parsed.text


def test_docx_title_is_the_core_property_when_set_else_the_first_heading(
    tmp_path: Path,
) -> None:
    import docx

    assert parse(fx.make_good_docx(tmp_path)).title == "Onboarding Checklist"

    document = docx.Document(str(fx.make_good_docx(tmp_path, name="titled.docx")))
    document.core_properties.title = "  New starters\n guide "
    document.save(str(tmp_path / "titled.docx"))
    assert parse(tmp_path / "titled.docx").title == "New starters guide"


def test_docx_that_libmagic_calls_octet_stream_is_still_read_as_docx(tmp_path: Path) -> None:
    import magic

    path = fx.make_docx_in_plain_zip(tmp_path)
    assert magic.from_file(str(path), mime=True) in ("application/octet-stream", "application/zip")

    assert sniff_mime(path) == DOCX
    assert parse(path).sections[1].title == "First Day"


def test_zip_bomb_docx_is_refused_from_the_zip_directory_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fx.make_zip_bomb_docx(tmp_path)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a zip member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    with pytest.raises(ParseError) as err:
        parse_file(path, max_unpacked_bytes=LIMIT)
    assert re.fullmatch(
        r"The DOCX would unpack to 30\d MB, over the 200 MB limit; it may be a zip bomb\.",
        str(err.value),
    ), str(err.value)


def test_docx_member_with_an_absurd_compression_ratio_is_refused_under_the_limit(
    tmp_path: Path,
) -> None:
    path = fx.make_good_docx(tmp_path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("word/media/zeros.bin", bytes(20 * 1024 * 1024))

    with pytest.raises(ParseError) as err:
        parse_file(path, max_unpacked_bytes=1024**3)
    assert "into 20 MB (a ratio of" in str(err.value)
    assert str(err.value).endswith("it may be a zip bomb.")


def test_docx_with_broken_xml_is_called_damaged_without_a_traceback(tmp_path: Path) -> None:
    path = fx.make_good_docx(tmp_path)
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data[: len(data) // 2] if name == "word/document.xml" else data)

    with pytest.raises(ParseError) as err:
        parse_file(broken, max_unpacked_bytes=LIMIT)
    assert str(err.value).startswith("The DOCX file could not be read: it looks damaged (")
    one_sentence(str(err.value))


# --- HTML --------------------------------------------------------------------------------


def test_html_keeps_visible_text_split_by_headings(tmp_path: Path) -> None:
    parsed = parse(fx.make_html(tmp_path))

    assert parsed.mime_type == "text/html"
    assert parsed.title == "VPN help"
    assert [s.title for s in parsed.sections] == ["", "Connecting", "Resetting a password"]
    assert parsed.sections[0].text == "Read this before travelling."
    assert parsed.sections[1].text == (
        "Open the Northgate client and choose Office.\n\nWindows: tray icon\nmacOS: menu bar"
    )
    assert "Visit the self-service portal.\nIt takes two minutes." in parsed.sections[2].text
    assert "Site | Gateway\nLeeds | vpn-lds" in parsed.sections[2].text
    for hidden in ("script text", "color: red", "Enable JavaScript"):
        assert hidden not in parsed.text


def test_html_without_a_title_element_is_titled_by_its_first_h1(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<!DOCTYPE html><html><body><h2>Aside</h2><p>x</p><h1>Laptop requests</h1>"
        "<p>Use the form.</p></body></html>",
        encoding="utf-8",
    )
    assert parse(path).title == "Laptop requests"


def test_html_fragment_that_libmagic_calls_plain_text_is_parsed_as_html(tmp_path: Path) -> None:
    path = tmp_path / "fragment.txt"
    path.write_text("<h2>VPN</h2>\n<p>Use the <b>Leeds</b> gateway.</p>\n", encoding="utf-8")

    parsed = parse(path)

    assert parsed.mime_type == "text/html"
    assert [(s.title, s.text) for s in parsed.sections] == [("VPN", "Use the Leeds gateway.")]


def test_xhtml_that_libmagic_calls_xml_is_parsed_as_html(tmp_path: Path) -> None:
    path = tmp_path / "page.xhtml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Printers</title></head>'
        "<body><h1>Floor 3</h1><pre>  lpr -P floor3\n    report.pdf\n</pre></body></html>",
        encoding="utf-8",
    )

    parsed = parse(path)

    assert parsed.mime_type == "text/html"
    assert parsed.title == "Printers"
    assert [(s.title, s.text) for s in parsed.sections] == [
        ("Floor 3", "lpr -P floor3\n    report.pdf")
    ]


# --- Markdown and plain text -----------------------------------------------------------------


def test_markdown_headings_start_sections_and_the_text_is_kept_as_written(
    tmp_path: Path,
) -> None:
    parsed = parse(fx.make_markdown(tmp_path))

    assert parsed.mime_type == "text/markdown"
    assert parsed.text == fx.GOOD_MARKDOWN
    assert parsed.title == "Employee Handbook"
    got = [(s.title, s.text) for s in parsed.sections]
    assert [title for title, _ in got] == [title for title, _ in fx.GOOD_MARKDOWN_SECTIONS]
    for (_, text), (_, expected) in zip(got, fx.GOOD_MARKDOWN_SECTIONS, strict=True):
        assert text.startswith(expected)
    # A "#" comment inside a code fence is code, not a heading.
    assert "# this is a shell comment" in parsed.sections[2].text
    # A rule or a blank heading leaves nothing to retrieve, so no section either.
    assert all(re.search(r"\w", s.text) for s in parsed.sections)
    # Front matter is metadata, not a section.
    assert "author:" not in "".join(s.text for s in parsed.sections)


def test_markdown_with_windows_line_endings_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes(b"\xef\xbb\xbf# Leave\r\n\r\nTwenty-seven days.\r\n")

    parsed = parse(path)

    assert parsed.text == "# Leave\n\nTwenty-seven days.\n"
    assert [(s.title, s.text) for s in parsed.sections] == [("Leave", "Twenty-seven days.")]


def test_markdown_that_libmagic_calls_c_source_is_still_markdown(tmp_path: Path) -> None:
    import magic

    path = tmp_path / "build.md"
    path.write_text("# Build\n\n```c\n#include <stdio.h>\nint main(void) { return 0; }\n```\n")
    assert magic.from_file(str(path), mime=True) != "text/plain"  # text/x-c with file 5.44

    parsed = parse(path)

    assert parsed.mime_type == "text/markdown"
    assert parsed.sections[0].title == "Build"


def test_plain_text_is_one_untitled_section(tmp_path: Path) -> None:
    parsed = parse(fx.make_plain_text(tmp_path))

    assert parsed.mime_type == "text/plain"
    assert parsed.title is None
    assert [(s.title, s.text, s.page) for s in parsed.sections] == [
        ("", fx.GOOD_TEXT.strip(), None)
    ]


@pytest.mark.parametrize("builder", [fx.make_utf8_bom_text, fx.make_utf16_text])
def test_utf8_bom_and_utf16_text_decode_to_the_same_text(tmp_path: Path, builder) -> None:
    parsed = parse(builder(tmp_path))

    assert parsed.text == fx.GOOD_TEXT
    assert parsed.sections[0].text == fx.GOOD_TEXT.strip()


def test_form_feeds_split_plain_text_into_sections(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(b"First page.\n\x0c\nSecond page.\n")

    assert [s.text for s in parse(path).sections] == ["First page.", "Second page."]


# --- sniffing, not extensions ----------------------------------------------------------------


def test_pdf_named_txt_is_parsed_as_pdf(tmp_path: Path) -> None:
    parsed = parse(fx.make_good_pdf(tmp_path, name="notes.txt"))

    assert parsed.mime_type == "application/pdf"
    assert [s.page for s in parsed.sections] == [1, 2, 3, 3]


def test_docx_named_pdf_is_parsed_as_docx(tmp_path: Path) -> None:
    parsed = parse(fx.make_good_docx(tmp_path, name="report.pdf"))

    assert parsed.mime_type == DOCX
    assert parsed.sections[1].title == "First Day"


def test_markdown_named_pdf_is_parsed_as_markdown(tmp_path: Path) -> None:
    assert parse(fx.make_markdown(tmp_path, name="handbook.pdf")).mime_type == "text/markdown"


def test_sniff_reports_what_the_content_is(tmp_path: Path) -> None:
    assert sniff_mime(fx.make_good_pdf(tmp_path, name="a.txt")) == "application/pdf"
    assert sniff_mime(fx.make_good_docx(tmp_path, name="b.pdf")) == DOCX
    assert sniff_mime(fx.make_html(tmp_path, name="c.pdf")) == "text/html"
    assert sniff_mime(fx.make_exe_named_pdf(tmp_path)) in (
        "application/vnd.microsoft.portable-executable",
        "application/x-dosexec",
    )


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(fx.BAD_INPUTS))
def test_every_bad_input_fails_with_its_sentence(tmp_path: Path, name: str) -> None:
    path = fx.BAD_INPUTS[name](tmp_path)

    with pytest.raises(ParseError) as err:
        parse_file(path, max_unpacked_bytes=LIMIT)

    assert fx.BAD_INPUT_MESSAGES[name] in str(err.value)
    one_sentence(str(err.value))


def test_empty_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as err:
        parse_file(fx.make_empty_file(tmp_path), max_unpacked_bytes=LIMIT)
    assert str(err.value) == "The file is empty."


def test_latin1_text_names_the_first_bad_byte(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as err:
        parse_file(fx.make_latin1_text(tmp_path), max_unpacked_bytes=LIMIT)
    assert str(err.value) == (
        f"The text is not valid UTF-8 (first bad byte at position {fx.LATIN1_BAD_BYTE}); "
        "save it as UTF-8 and upload it again."
    )


def test_exe_renamed_pdf_is_named_for_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as err:
        parse_file(fx.make_exe_named_pdf(tmp_path), max_unpacked_bytes=LIMIT)
    message = str(err.value)
    assert re.fullmatch(
        r"This file is a Windows executable \((application/vnd\.microsoft\.portable-executable"
        r"|application/x-dosexec)\), not a document\. " + re.escape(SUPPORTED_TYPES_SENTENCE),
        message,
    ), message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\x01\x02binary\x00" * 20, "(application/octet-stream), so it cannot be indexed."),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "which Enclave cannot index;"),
    ],
)
def test_unsupported_types_are_named(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "upload.txt"
    path.write_bytes(content)

    with pytest.raises(ParseError) as err:
        parse_file(path, max_unpacked_bytes=LIMIT)
    assert expected in str(err.value)
    assert str(err.value).endswith(SUPPORTED_TYPES_SENTENCE)


def test_a_missing_file_is_not_the_uploaders_fault(tmp_path: Path) -> None:
    # The pipeline reports a missing stored file itself; it must not read "damaged".
    with pytest.raises(FileNotFoundError):
        parse_file(tmp_path / "gone.pdf", max_unpacked_bytes=LIMIT)


def test_sized_file_is_exactly_that_big_and_sparse(tmp_path: Path) -> None:
    path = fx.make_sized_file(tmp_path, size=51 * 1024 * 1024)

    assert path.stat().st_size == 51 * 1024 * 1024
    assert path.read_bytes()[:5] == b"%PDF-"
    assert path.stat().st_blocks * 512 < 1024 * 1024  # sparse: nothing was written


def test_importing_the_parsers_loads_no_parser_library() -> None:
    code = (
        "import sys, apps.knowledge.parsers; "
        "print(sorted(m for m in ('pypdf', 'docx', 'lxml', 'magic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the offset invariant, property-based ----------------------------------------------------

# Characters that make headings, fences, underlines and whitespace edge cases likely.
_TRICKY = st.text(
    alphabet=st.sampled_from(list("#=-`~ \t\n\r\f>*1.ab é\u00a0\u2028\x85")), max_size=300
)


@settings(max_examples=300, deadline=None)
@given(_TRICKY)
def test_sections_are_true_slices_of_any_text(text: str) -> None:
    parsed = parse_text(decode_text(text.encode("utf-8")))
    assert_offsets_true(parsed)


_WORD = st.text(alphabet=st.sampled_from(list("abcdefghij")), min_size=1, max_size=8)
_LINE = st.lists(_WORD, min_size=1, max_size=6).map(" ".join)
_BODY = st.lists(_LINE, min_size=0, max_size=4).map("\n".join)


@st.composite
def _markdown_documents(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A Markdown document and the (title, body) sections it was written from."""
    parts: list[str] = []
    expected: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        title, body = draw(_LINE), draw(_BODY)
        style = draw(st.sampled_from(["atx", "atx-closed", "setext-1", "setext-2"]))
        if style == "atx":
            heading = f"{'#' * draw(st.integers(1, 6))} {title}"
        elif style == "atx-closed":
            heading = f"## {title} ##"
        else:
            heading = f"{title}\n{('=' if style == 'setext-1' else '-') * len(title)}"
        parts.append(f"{heading}\n\n{body}\n" if body else f"{heading}\n")
        if body:
            expected.append((title, body))
    return "\n".join(parts), expected


@settings(max_examples=200, deadline=None)
@given(_markdown_documents())
def test_markdown_sections_are_recovered_exactly(
    document: tuple[str, list[tuple[str, str]]],
) -> None:
    text, expected = document
    parsed = parse_text(text)
    assert_offsets_true(parsed)
    assert [(s.title, s.text) for s in parsed.sections] == expected


_TAGS = st.sampled_from(
    ["p", "div", "h1", "h3", "li", "ul", "table", "tr", "td", "pre", "b", "span", "br",
     "script", "style"]
)  # fmt: skip
_HTML_TEXT = st.text(alphabet=st.sampled_from(list("ab \n\t<>&é")), max_size=12)


@st.composite
def _html_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 4))):
        if depth < 3 and draw(st.booleans()):
            tag = draw(_TAGS)
            inner = draw(_html_fragments(depth + 1))
            pieces.append(f"<{tag}>{inner}</{tag}>")
        else:
            from html import escape

            pieces.append(escape(draw(_HTML_TEXT)))
    return "".join(pieces)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_html_fragments())
def test_html_sections_are_true_slices(fragment: str) -> None:
    parsed = parse_html_text(f"<html><body>{fragment}</body></html>")
    assert_offsets_true(parsed)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_fail_with_the_sentence(data: bytes) -> None:
    try:
        text = decode_text(data)
    except ParseError as err:
        assert "save it as UTF-8 and upload it again." in str(err)
    else:
        assert "\x00" not in text and "\r" not in text
        text.encode("utf-8")  # storable: no lone surrogates


def test_random_text_files_round_trip_through_the_registry() -> None:
    """The same invariant end to end, through libmagic, on a fixed sample of files."""
    samples = [
        "# A\n\nb\n\n## C\n\n\nd\n",
        "plain words only\n\n\n\nmore words\n",
        "Title\n=====\n\n- item\n---\n\ntext\n",
        "\f\fpage two\f",
    ]
    with tempfile.TemporaryDirectory() as directory:
        for number, sample in enumerate(samples):
            path = Path(directory) / f"sample{number}.bin"
            path.write_text(sample, encoding="utf-8")
            parse(path)


# --- the demo documents ----------------------------------------------------------------------

DEMO_DIR = Path(__file__).resolve().parents[2] / "apps" / "knowledge" / "demo"


def _demo_manifest() -> list[dict[str, str]]:
    import json

    return json.loads((DEMO_DIR / "manifest.json").read_text(encoding="utf-8"))


def test_every_demo_document_parses_into_titled_sections() -> None:
    manifest = _demo_manifest()
    assert {entry["collection"] for entry in manifest} == {
        "Company handbook",
        "Finance — confidential",
    }
    for entry in manifest:
        assert entry["label"] in {"public", "internal", "confidential", "restricted"}
        parsed = parse(DEMO_DIR / entry["file"])
        assert 300 <= len(parsed.text.split()) <= 1000, entry["file"]
        assert parsed.sections, entry["file"]


def test_demo_canaries_live_only_in_the_finance_collection() -> None:
    texts = {entry["file"]: parse(DEMO_DIR / entry["file"]).text for entry in _demo_manifest()}

    assert texts["q3-board-memo.md"].count("CANARY-FIN-7Q3X") == 2
    assert "CANARY-SAL-22KD" in texts["salary-bands.txt"]
    for entry in _demo_manifest():
        if entry["collection"] == "Company handbook":
            assert "CANARY-" not in texts[entry["file"]]


def test_demo_product_faq_is_a_public_pdf_of_two_or_three_pages() -> None:
    faq = next(e for e in _demo_manifest() if e["file"].endswith(".pdf"))
    parsed = parse(DEMO_DIR / faq["file"])

    assert faq["label"] == "public"
    assert parsed.title == "Pathfinder Product FAQ"
    assert {s.page for s in parsed.sections} in ({1, 2}, {1, 2, 3})
    battery = next(s for s in parsed.sections if s.title == "Battery and charging")
    assert "10% to 90% in 55 minutes" in " ".join(battery.text.split())
