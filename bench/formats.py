"""Issue 16 formats, measured: `make bench-formats` (`--runs N`, `--ocr-pages N`).

Builds a mixed corpus in a temporary folder, from known text, with every supported
format (a slide deck, sheets, ODF, RTF, an e-mail with attachments, 300-dpi scans as
PNG/JPEG/TIFF and as a text-less PDF, a PDF with a table, text of several kinds), and
parses it as ingestion would. Prints per run and as ranges:

- the share of files indexed with text (an e-mail's attachments count as files);
- the OCR character error rate against the text the scans were rendered from;
- OCR pages per minute with one page per core, and the ratio to one page at a time
  (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import ROOT  # noqa: F401 - bench/ is on sys.path; puts the project on it

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

from apps.knowledge.parsers import ParseError, parse_file  # noqa: E402
from apps.knowledge.parsers.base import has_words  # noqa: E402
from apps.knowledge.parsers.pdf_pages import ocr_pdf_pages  # noqa: E402
from tests.support import fixtures as fx  # noqa: E402
from tests.support import formats as fm  # noqa: E402

LIMIT = 200 * 1024 * 1024
KNOWN = "\n".join(fm.SCAN_TEXT)


def corpus(directory: Path) -> list[Path]:
    d = directory
    attachments = {
        "prices.xlsx": fm.make_xlsx(d, name="att-prices.xlsx").read_bytes(),
        "policy.odt": fm.make_odt(d, name="att-policy.odt").read_bytes(),
        "scan.png": fm.make_scan_image(d, name="att-scan.png").read_bytes(),
    }
    for name in ("att-prices.xlsx", "att-policy.odt", "att-scan.png"):
        (d / name).unlink()
    js = d / "notes.js"
    js.write_text("// The VPN portal moved to vpn.example.com in March.\nconst moved = true;\n")
    data = d / "leave.json"
    data.write_text('{"leave_days": 27, "note": "booked in the HR portal"}\n')
    log = d / "app.log"
    log.write_text("2026-12-07 06:00:01 INFO portal started on port 8080\n")
    return [
        fm.make_pptx(d),
        fm.make_xlsx(d),
        fm.make_csv(d),
        fm.make_odt(d),
        fm.make_ods(d),
        fm.make_odp(d),
        fm.make_rtf(d),
        fm.make_eml(d, attachments=attachments),
        fm.make_table_pdf(d),
        fm.make_scan_image(d, fmt="PNG", name="scan.png"),
        fm.make_scan_image(d, fmt="JPEG", name="scan.jpg"),
        fm.make_scan_image(d, fmt="TIFF", name="scan.tif"),
        fm.make_scanned_text_pdf(d, pages=2, name="scan.pdf"),
        fx.make_good_pdf(d),
        fx.make_good_docx(d),
        fx.make_html(d),
        fx.make_markdown(d),
        fx.make_plain_text(d),
        js,
        data,
        log,
    ]


def one_run(directory: Path, ocr_pages: int) -> dict[str, float]:
    files = corpus(directory)
    ok = total = 0
    errors: list[float] = []
    failed: list[str] = []
    queue = list(files)
    while queue:
        path = queue.pop(0)
        total += 1
        try:
            parsed = parse_file(path, max_unpacked_bytes=LIMIT)
        except ParseError as err:
            failed.append(f"{path.name}: {err}")
            continue
        if has_words(parsed.text):
            ok += 1
        for attachment in parsed.attachments:
            child = directory / f"from-{path.stem}-{attachment.name}"
            child.write_bytes(attachment.data)
            queue.append(child)
        if parsed.ocr is not None:
            for page in parsed.ocr.pages:
                page_text = "\n".join(s.text for s in parsed.sections if s.page == page)
                errors.append(fm.character_error_rate(KNOWN, page_text))
    for line in failed:
        print("  not indexed:", line)

    scan = fm.make_scanned_text_pdf(directory, pages=ocr_pages, name="throughput.pdf")
    pages = list(range(1, ocr_pages + 1))
    started = time.perf_counter()
    ocr_pdf_pages(scan, pages, workers=1)
    serial = time.perf_counter() - started
    started = time.perf_counter()
    ocr_pdf_pages(scan, pages)
    parallel = time.perf_counter() - started
    return {
        "files": total,
        "with_text": ok,
        "cer_mean": sum(errors) / len(errors),
        "cer_max": max(errors),
        "ocr_pages": len(errors),
        "ppm_serial": ocr_pages / serial * 60,
        "ppm": ocr_pages / parallel * 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ocr-pages", type=int, default=8)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; {args.runs} runs; OCR throughput on {args.ocr_pages} pages")
    runs = []
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
            r = one_run(Path(tmp), args.ocr_pages)
        runs.append(r)
        print(
            f"run {number}: {r['with_text']:.0f}/{r['files']:.0f} files indexed with text; "
            f"OCR CER mean {r['cer_mean']:.2%} max {r['cer_max']:.2%} over {r['ocr_pages']:.0f} "
            f"pages; {r['ppm']:.1f} pages/min (one page per core) vs {r['ppm_serial']:.1f} "
            f"(one at a time): ratio {r['ppm'] / r['ppm_serial']:.2f}"
        )

    def span(key: str, fmt: str) -> str:
        values = [r[key] for r in runs]
        return f"{format(min(values), fmt)}–{format(max(values), fmt)}"

    print("summary over runs:")
    print(f"  share indexed with text: {span('with_text', '.0f')} of {runs[0]['files']:.0f} files")
    cer, worst = span("cer_mean", ".2%"), span("cer_max", ".2%")
    print(f"  OCR character error rate: mean {cer}, worst page {worst} (goal ≤ 3%)")
    ppm, serial = span("ppm", ".1f"), span("ppm_serial", ".1f")
    print(f"  OCR pages/min, one page per core: {ppm}; one at a time: {serial}")
    ratios = [r["ppm"] / r["ppm_serial"] for r in runs]
    print(f"  ratio to one page at a time: {min(ratios):.2f}–{max(ratios):.2f}")


if __name__ == "__main__":
    main()
