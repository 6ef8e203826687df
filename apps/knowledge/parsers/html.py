"""HTML: visible text only, h1–h6 start sections, blocks become paragraphs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from apps.knowledge.parsers.base import ParsedDocument, TextAssembler, collapse_title
from apps.knowledge.parsers.text import decode_text

HTML_MIME = "text/html"

# Not visible, or not content: their text would pollute every chunk of the page.
_DROP = {"script", "style", "noscript", "head", "template", "svg", "math", "iframe", "object"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Blocks separated by a blank line become the chunker's paragraphs...
_PARAGRAPH_BLOCKS = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "nav",
    "blockquote", "pre", "ul", "ol", "dl", "table", "form", "fieldset", "figure",
    "figcaption", "details", "summary", "address", "hr", "body", "caption",
}  # fmt: skip
# ...while list items and table rows stay on consecutive lines.
_LINE_BLOCKS = {"li", "dt", "dd", "tr", "option", "legend"}
_CELLS = {"td", "th"}
_SPACES = re.compile(r"[ \t\n\r\f\v]+")


class _Walker:
    """Turns the element tree into (heading, body) pairs with whitespace collapsed the
    way a browser would: runs of spaces inside a block are one space."""

    def __init__(self) -> None:
        self.sections: list[tuple[str, str]] = []  # (heading, body) in order
        self._heading = ""
        self._blocks: list[str] = []  # finished lines of the current section's body
        self._line: list[str] = []  # pieces of the line being built
        self._pending = ""  # separator owed before the next text: "", "\n" or "\n\n"
        self._in_pre = 0

    def _owe(self, separator: str) -> None:
        self._end_line()
        if len(separator) > len(self._pending):
            self._pending = separator

    def _end_line(self) -> None:
        line = "".join(self._line)
        self._line.clear()
        # Inside <pre> indentation is content; only the blank lines around it go.
        line = line.strip("\n").rstrip() if self._in_pre else line.strip()
        if not line.strip():
            return
        if self._blocks:
            self._blocks.append(self._pending or "\n")
        self._blocks.append(line)
        self._pending = ""

    def _text(self, text: str | None) -> None:
        if not text:
            return
        if self._in_pre:
            self._line.append(text)
            return
        text = _SPACES.sub(" ", text)
        if text == " " and (not self._line or self._line[-1].endswith(" ")):
            return
        if self._line and self._line[-1].endswith(" ") and text.startswith(" "):
            text = text[1:]
        self._line.append(text)

    def _close_section(self) -> None:
        self._end_line()
        self.sections.append((self._heading, "".join(self._blocks)))
        self._blocks.clear()
        self._pending = ""

    def walk(self, element: Any) -> None:
        tag = element.tag if isinstance(element.tag, str) else None
        tag = tag.lower().rsplit("}", 1)[-1] if tag else None  # XHTML namespaces
        if tag is None or tag in _DROP:
            pass  # comments, processing instructions, invisible elements: tail only
        elif tag in _HEADINGS:
            self._close_section()
            self._heading = " ".join(element.text_content().split())
        elif tag == "br":
            if self._in_pre:
                self._line.append("\n")
            else:
                self._end_line()
                self._pending = self._pending or "\n"
        else:
            self._enter(element, tag)
        self._text(element.tail)

    def _enter(self, element: Any, tag: str) -> None:
        if tag in _PARAGRAPH_BLOCKS:
            self._owe("\n\n")
        elif tag in _LINE_BLOCKS:
            self._owe("\n")
        elif tag in _CELLS and self._line:
            self._line.append(" | ")
        if tag == "pre":
            self._in_pre += 1
        elif tag == "img" and element.get("alt"):
            self._text(f" {element.get('alt')} ")
        self._text(element.text)
        for child in element:
            self.walk(child)
        if tag == "pre":
            self._end_line()
            self._in_pre -= 1
        if tag in _PARAGRAPH_BLOCKS:
            self._owe("\n\n")
        elif tag in _LINE_BLOCKS:
            self._owe("\n")

    def finish(self) -> list[tuple[str, str]]:
        self._close_section()
        return self.sections


def parse_html_text(text: str) -> ParsedDocument:
    import lxml.html  # heavy: lxml's C extension; only a worker parsing HTML pays for it

    # Bytes plus an explicit encoding: lxml refuses a str that carries an XML encoding
    # declaration, and the decoding rule (UTF-8 or UTF-16) has already been applied.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, no_network=True)
    root = lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)

    title = collapse_title(root.findtext(".//title"))
    walker = _Walker()
    body = root.find("body")
    walker.walk(body if body is not None else root)

    assembler = TextAssembler()
    first_h1: str | None = None
    for heading, section_body in walker.finish():
        if heading:
            assembler.add_heading(heading)
        assembler.add_section(title=heading, text=section_body)
    if title is None:
        for h1 in root.iter("h1"):
            first_h1 = collapse_title(h1.text_content())
            if first_h1:
                break
    return assembler.build(mime_type=HTML_MIME, title=title or first_h1)


def parse_html(path: Path) -> ParsedDocument:
    return parse_html_text(decode_text(path.read_bytes()))
