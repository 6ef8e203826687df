"""PPTX: one section per slide, titled by the slide's title; speaker notes kept with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.knowledge.parsers.archive import check_zip
from apps.knowledge.parsers.base import ParsedDocument, ParseError, TextAssembler, collapse_title
from apps.knowledge.parsers.tables import render_rows

PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
PRESENTATION_PART = "ppt/presentation.xml"


def _shape_texts(shapes: Any) -> list[str]:
    texts: list[str] = []
    for shape in shapes:
        if getattr(shape, "shape_type", None) == 6 and hasattr(shape, "shapes"):  # a group
            texts.extend(_shape_texts(shape.shapes))
        elif getattr(shape, "has_table", False):
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            texts.append(render_rows(rows))
        elif getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
            texts.append(shape.text_frame.text.strip())
    return texts


def parse_pptx(path: Path, *, max_unpacked_bytes: int) -> ParsedDocument:
    check_zip(path, kind="PPTX", required=PRESENTATION_PART, max_unpacked_bytes=max_unpacked_bytes)
    import pptx  # heavy: python-pptx loads lxml and its shape model

    deck = pptx.Presentation(str(path))
    assembler = TextAssembler()
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        heading = title_shape.text_frame.text.strip() if title_shape is not None else ""
        body = [t for t in _shape_texts(slide.shapes) if t != heading]
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                body.append("Speaker notes: " + notes.text.strip())
        title = " ".join(heading.split()) or f"Slide {number}"
        assembler.add_heading(f"Slide {number}: {heading}" if heading else f"Slide {number}")
        # A slide is the PPTX's page: a citation names "slide 3" as "page 3".
        assembler.add_section(title=title, text="\n\n".join(body) or heading, page=number)
    if not assembler.sections:
        raise ParseError("The presentation has no text on its slides or in its notes.")
    return assembler.build(mime_type=PPTX_MIME, title=collapse_title(deck.core_properties.title))
