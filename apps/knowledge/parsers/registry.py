"""Sniff the type from the content, pick the parser for it, and make every failure a
sentence.

The extension is never consulted: an EXE renamed .pdf must be refused as an EXE, and a
PDF saved as .txt is still a PDF.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from apps.knowledge.parsers.archive import LOCKED_SENTENCE
from apps.knowledge.parsers.base import SUPPORTED_TYPES_SENTENCE, ParsedDocument, ParseError
from apps.knowledge.parsers.docx import DOCUMENT_PART, DOCX_MIME, parse_docx
from apps.knowledge.parsers.html import parse_html, parse_html_text
from apps.knowledge.parsers.image import IMAGE_MIMES, parse_image
from apps.knowledge.parsers.mail import EML_MIME, MSG_MIME, parse_eml, parse_msg
from apps.knowledge.parsers.odf import KINDS as ODF_KINDS
from apps.knowledge.parsers.odf import parse_odf
from apps.knowledge.parsers.pdf import parse_pdf
from apps.knowledge.parsers.rtf import parse_rtf
from apps.knowledge.parsers.sheets import CSV_MIME, XLSX_MIME, parse_csv, parse_xlsx
from apps.knowledge.parsers.slides import PPTX_MIME, parse_pptx
from apps.knowledge.parsers.text import decode_text, looks_like_markdown, parse_text

logger = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
ZIP = "application/zip"
# OLE compound files: old Office, Outlook .msg, and password-protected OOXML (an
# EncryptedPackage stream inside a compound file).
OLE_MIMES = {
    "application/cdfv2",
    "application/x-ole-storage",
    "application/encrypted",
    "application/vnd.ms-office",
    "application/cdfv2-encrypted",
}


@dataclass(frozen=True)
class Parser:
    label: str  # how a person names the type: "PDF", "DOCX", ...
    parse: Callable[[Path, int], ParsedDocument]  # (path, max_unpacked_bytes)


def _pdf(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_pdf(path, max_unpacked_bytes=max_unpacked_bytes)


def _docx(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_docx(path, max_unpacked_bytes=max_unpacked_bytes)


def _html(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_html(path)


def _text(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    text = decode_text(path.read_bytes())
    # libmagic calls HTML "text/html" only when it opens the way it expects; a saved
    # fragment ("<h2>VPN</h2><p>…") or a UTF-16 page can arrive as text/plain.
    head = text[:4096]  # the opening decides; also bounds the regex work
    if _HTML_DOCUMENT.match(head) or (
        _HTML_FRAGMENT.match(head) and _HTML_CLOSE.search(text) and not looks_like_markdown(text)
    ):
        return parse_html_text(text)
    return parse_text(text)


def _xml(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    """XHTML is XML to libmagic; any other XML is text like any other."""
    text = decode_text(path.read_bytes())
    if _HTML_DOCUMENT.match(text[:4096]):
        return parse_html_text(text)
    return parse_text(text)


def _plain(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    """Text is text: JSON, YAML, source code and logs are indexed as they are written."""
    return parse_text(decode_text(path.read_bytes()))


def _csv(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_csv(path.read_bytes())


def _rtf(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_rtf(path.read_bytes())


def _xlsx(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_xlsx(path, max_unpacked_bytes=max_unpacked_bytes)


def _pptx(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_pptx(path, max_unpacked_bytes=max_unpacked_bytes)


def _odf(mime: str) -> Callable[[Path, int], ParsedDocument]:
    def parse(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
        return parse_odf(path, mime=mime, max_unpacked_bytes=max_unpacked_bytes)

    return parse


def _image(mime: str) -> Callable[[Path, int], ParsedDocument]:
    def parse(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
        return parse_image(path, mime=mime)

    return parse


def _eml(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_eml(path.read_bytes())


def _msg(path: Path, max_unpacked_bytes: int) -> ParsedDocument:
    return parse_msg(path)


_HTML_DOCUMENT = re.compile(
    r"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_HTML_FRAGMENT = re.compile(
    r"\s*<(?:p|div|h[1-6]|table|ul|ol|section|article|main|body|span|a|br|hr)\b", re.IGNORECASE
)
_HTML_CLOSE = re.compile(r"</(?:p|div|h[1-6]|table|ul|ol|section|article|main|body)\s*>", re.I)

PARSERS: dict[str, Parser] = {
    "application/pdf": Parser("PDF", _pdf),
    DOCX_MIME: Parser("DOCX", _docx),
    "text/html": Parser("HTML", _html),
    "application/xhtml+xml": Parser("HTML", _html),
    "text/plain": Parser("text", _text),
    "text/markdown": Parser("Markdown", _text),
    "text/x-markdown": Parser("Markdown", _text),
    "text/xml": Parser("XML", _xml),
    "application/xml": Parser("XML", _xml),
    CSV_MIME: Parser("CSV", _csv),
    "text/rtf": Parser("RTF", _rtf),
    "application/rtf": Parser("RTF", _rtf),
    XLSX_MIME: Parser("XLSX", _xlsx),
    PPTX_MIME: Parser("PPTX", _pptx),
    EML_MIME: Parser("e-mail", _eml),
    MSG_MIME: Parser("Outlook message", _msg),
    **{mime: Parser(kind, _odf(mime)) for mime, kind in ODF_KINDS.items()},
    **{mime: Parser(kind, _image(mime)) for mime, kind in IMAGE_MIMES.items()},
}
# Text formats libmagic names as applications; each is indexed as the text it is.
TEXT_APPLICATIONS = {
    "application/json",
    "application/javascript",
    "application/x-javascript",
    "application/x-yaml",
    "application/yaml",
    "application/x-sh",
    "application/x-shellscript",
    "application/sql",
    "application/x-httpd-php",
    "application/x-perl",
    "application/x-ruby",
    "application/toml",
    "application/x-wine-extension-ini",
    "application/x-ndjson",
}
# libmagic names prose after whatever it resembles (text/x-c for a guide that quotes
# "#include", text/csv for lines with commas); all of it is text to us. These text/*
# types are not: they are formats with markup of their own.
_TEXT_NOT_PLAIN = {"text/rtf"}

_COMPOUND = (
    "a compound file that is no Outlook message Enclave can read (an old Office format, or damaged)"
)
# What a person should hear instead of a bare MIME type. `True` marks documents that
# could be converted, which changes the advice.
_KINDS: dict[str, tuple[str, bool]] = {
    "application/x-dosexec": ("a Windows executable", False),
    "application/vnd.microsoft.portable-executable": ("a Windows executable", False),
    "application/x-msdownload": ("a Windows executable", False),
    "application/x-msi": ("a Windows installer", False),
    "application/x-executable": ("a Linux executable", False),
    "application/x-pie-executable": ("a Linux executable", False),
    "application/x-sharedlib": ("a Linux shared library", False),
    "application/x-mach-binary": ("a macOS executable", False),
    "application/java-archive": ("a Java archive", False),
    ZIP: ("a zip archive", False),
    "application/x-ole-storage": (_COMPOUND, True),
    "application/cdfv2": (_COMPOUND, True),
    "application/gzip": ("a gzip archive", False),
    "application/x-tar": ("a tar archive", False),
    "application/x-bzip2": ("a bzip2 archive", False),
    "application/x-xz": ("an xz archive", False),
    "application/zstd": ("a zstd archive", False),
    "application/x-7z-compressed": ("a 7-Zip archive", False),
    "application/x-rar": ("a RAR archive", False),
    "application/vnd.rar": ("a RAR archive", False),
    "application/x-sqlite3": ("an SQLite database", False),
    "application/msword": ("an old-style Word document (.doc)", True),
    "application/vnd.ms-word.document.macroenabled.12": ("a macro-enabled Word document", True),
    "application/vnd.ms-excel": ("an Excel spreadsheet", True),
    "application/vnd.ms-powerpoint": ("a PowerPoint presentation", True),
    "application/epub+zip": ("an EPUB e-book", True),
    "application/postscript": ("a PostScript file", True),
}
_KIND_PREFIXES = {
    "image/": "an image",
    "audio/": "an audio file",
    "video/": "a video",
    "font/": "a font",
}


def sniff_mime(path: Path) -> str:
    """libmagic's MIME type for the content, refined for Office files in a plain zip.

    Word orders the parts of a DOCX the way libmagic's rules expect; files written by
    other tools (or re-zipped) come back as application/zip or octet-stream, so for
    those the zip directory is read (names only, nothing is decompressed).
    """
    # heavy: python-magic loads libmagic and its database on import
    import magic

    try:
        mime = magic.from_file(str(path), mime=True)
    except magic.MagicException:
        logger.warning("libmagic could not identify %s", path.name, exc_info=True)
        mime = OCTET_STREAM
    mime = (mime or OCTET_STREAM).lower()
    if mime in (ZIP, OCTET_STREAM) and _starts_like_zip(path):
        return _zip_flavour(path) or mime
    if mime in ("text/plain", OCTET_STREAM, "message/news") and _looks_like_email(path):
        return EML_MIME
    if mime in OLE_MIMES and _ole_streams(path) & {"encryptedpackage", "encryptioninfo"}:
        return ENCRYPTED_OFFICE
    return mime


ENCRYPTED_OFFICE = "application/x-encrypted-office"
_HEADER_LINE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*:.*|[ \t].*)$")
_MAIL_FIELDS = {"subject", "date", "to", "message-id", "received", "mime-version"}


def _looks_like_email(path: Path) -> bool:
    """libmagic knows a message by a few opening headers (Received:, Return-Path:); one
    saved by a mail client can start with any. A header block that holds From: and
    another message field, then a blank line, is a message."""
    with path.open("rb") as fh:
        head = fh.read(16384).decode("latin-1").replace("\r\n", "\n")
    block, blank, _ = head.partition("\n\n")
    if not blank:
        return False
    lines = block.split("\n")
    if not all(_HEADER_LINE.match(line) for line in lines):
        return False
    names = {line.split(":", 1)[0].lower() for line in lines if not line[:1].isspace()}
    return "from" in names and bool(names & _MAIL_FIELDS)


def _ole_streams(path: Path) -> set[str]:
    """Top-level stream names of an OLE compound file, lower-cased (empty if unreadable)."""
    import olefile  # heavy-ish; only compound files pay for it

    try:
        with olefile.OleFileIO(str(path)) as ole:
            return {entry[0].lower() for entry in ole.listdir(streams=True, storages=False)}
    except (OSError, ValueError):
        return set()


def _starts_like_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _zip_flavour(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError):
        return None
    if DOCUMENT_PART in names:
        return DOCX_MIME
    if "xl/workbook.xml" in names:
        return XLSX_MIME
    if "ppt/presentation.xml" in names:
        return PPTX_MIME
    if "content.xml" in names:
        with zipfile.ZipFile(path) as archive:
            declared = (
                archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                if "mimetype" in names
                else ""
            )
        return declared if declared in ODF_KINDS else None
    return None


def parser_for(mime: str) -> Parser | None:
    if mime in PARSERS:
        return PARSERS[mime]
    if (mime.startswith("text/") and mime not in _TEXT_NOT_PLAIN) or mime in TEXT_APPLICATIONS:
        return Parser("text", _plain)
    return None


def _looks_like_text(path: Path) -> bool:
    """Bytes libmagic gave up on but that are no binary format: mostly printable, no
    NULs. These get the text parser, whose UTF-8 check names the offending byte."""
    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head or b"\x00" in head:
        return False
    printable = sum(1 for b in head if b >= 0x20 or b in b"\t\n\r\f")
    return printable / len(head) > 0.95


def unsupported_sentence(mime: str) -> str:
    kind, is_document = _KINDS.get(mime, ("", False))
    if not kind:
        kind = next((k for p, k in _KIND_PREFIXES.items() if mime.startswith(p)), "")
    if mime == OCTET_STREAM or not kind:
        return (
            f"This file's type is not one Enclave recognises ({mime}), so it cannot be "
            f"indexed. {SUPPORTED_TYPES_SENTENCE}"
        )
    if is_document:
        return (
            f"This file is {kind} ({mime}), which Enclave cannot index; save it as PDF or "
            f"DOCX and upload it again. {SUPPORTED_TYPES_SENTENCE}"
        )
    return f"This file is {kind} ({mime}), not a document. {SUPPORTED_TYPES_SENTENCE}"


def _short_reason(err: BaseException, path: Path) -> str:
    """One line, no paths from this server, no traceback."""
    text = str(err).replace(str(path), path.name).strip()
    text = text.splitlines()[0].strip() if text else ""
    text = re.sub(r"\s*\(<string>, line \d+\)$", "", text)  # lxml repeats the position
    text = text.rstrip(".")
    if len(text) > 120:
        text = text[:117].rstrip() + "..."
    return text or type(err).__name__


def parse_file(path: Path, *, max_unpacked_bytes: int) -> ParsedDocument:
    """Parse one stored file. Raises ParseError (a sentence for a person) for anything
    that is not a readable document; FileNotFoundError passes through, because a
    missing file is the server's problem, not the uploader's."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise ParseError("The file is empty.")

    mime = sniff_mime(path)
    parser = parser_for(mime)
    if parser is None and mime == OCTET_STREAM and _looks_like_text(path):
        parser = PARSERS["text/plain"]
    if mime == ENCRYPTED_OFFICE:
        raise ParseError(LOCKED_SENTENCE.format(kind="Office"))
    if parser is None:
        raise ParseError(unsupported_sentence(mime))

    try:
        return parser.parse(path, max_unpacked_bytes)
    except (ParseError, FileNotFoundError):
        raise
    except Exception as err:
        # The one place a parser's surprise is turned into words; the log keeps the rest.
        logger.warning("parser for %s failed on %s", mime, path.name, exc_info=True)
        raise ParseError(
            f"The {parser.label} file could not be read: it looks damaged "
            f"({_short_reason(err, path)})."
        ) from err
