"""`manage.py parse_file PATH [--json] [--no-text]`: what Enclave extracts from one file.

Detected type, pages, sections (title, page, length), OCR, e-mail fields, attachments
and the text, exactly as ingestion would see them; touches no database and no index.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.knowledge.parsers import ParseError, parse_file, sniff_mime


class Command(BaseCommand):
    help = "Print what Enclave extracts from a file: type, pages, sections and text."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("path", type=Path)
        parser.add_argument("--json", action="store_true", help="one JSON object instead")
        parser.add_argument("--no-text", action="store_true", help="leave the text out")

    def handle(self, *args: object, **options: object) -> None:
        path: Path = options["path"]  # type: ignore[assignment]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        detected = sniff_mime(path)
        try:
            parsed = parse_file(path, max_unpacked_bytes=settings.UNPACKED_MAX_BYTES)
        except ParseError as err:
            raise CommandError(f"{path.name} ({detected}): {err}") from None
        pages = sorted({s.page for s in parsed.sections if s.page is not None})
        report = {
            "file": path.name,
            "detected_type": parsed.mime_type,
            "title": parsed.title,
            "pages": len(pages),
            "sections": [
                {"title": s.title, "page": s.page, "start": s.start, "chars": len(s.text)}
                for s in parsed.sections
            ],
            "ocr": (
                {"pages": list(parsed.ocr.pages), "confidence": parsed.ocr.confidence}
                if parsed.ocr
                else None
            ),
            "metadata": parsed.metadata,
            "attachments": [{"name": a.name, "bytes": len(a.data)} for a in parsed.attachments],
            "chars": len(parsed.text),
        }
        if not options["no_text"]:
            report["text"] = parsed.text
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
            return
        self._print(report)

    def _print(self, report: dict) -> None:
        out = self.stdout.write
        out(f"file:          {report['file']}")
        out(f"detected type: {report['detected_type']}")
        out(f"title:         {report['title'] or '(none)'}")
        out(f"pages:         {report['pages'] or '(not paged)'}")
        ocr = report["ocr"]
        out(
            "OCR:           "
            + (f"{len(ocr['pages'])} page(s), mean confidence {ocr['confidence']}" if ocr else "no")
        )
        for key, value in report["metadata"].items():
            out(f"{key + ':':<15}{value}")
        for attachment in report["attachments"]:
            out(f"attachment:    {attachment['name']} ({attachment['bytes']} bytes)")
        out(f"sections:      {len(report['sections'])}, {report['chars']} characters in all")
        for number, section in enumerate(report["sections"], start=1):
            page = f"page {section['page']}, " if section["page"] is not None else ""
            title = section["title"] or "(untitled)"
            out(f"  {number:>3}. {title} ({page}{section['chars']} chars)")
        if "text" in report:
            out("--- text ---")
            out(report["text"])
