"""Rows rendered with their header, so a passage holding one row still says what each
value is: "what does plan B cost" finds "Plan: B | Price: 20 EUR" where a bare "B | 20"
would not. Shared by sheets, CSV and tables in PDFs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Cells rendered per document at most (sheets, CSV): a sheet of millions of cells is data
# for a database, and a cap said in words beats a worker that runs out of memory.
MAX_CELLS = 1_000_000


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def render_rows(rows: Iterable[Sequence[object]]) -> str:
    """The first non-empty row is the header; every later row names its columns."""
    header: list[str] | None = None
    lines: list[str] = []
    for raw in rows:
        cells = [cell_text(c) for c in raw]
        if not any(cells):
            continue
        if header is None:
            header = cells
            lines.append(" | ".join(c for c in cells if c))
            continue
        named = []
        for index, value in enumerate(cells):
            if not value:
                continue
            name = header[index] if index < len(header) else ""
            named.append(f"{name}: {value}" if name else value)
        lines.append(" | ".join(named))
    return "\n".join(lines)
