"""A BEIR-layout data set as evaluate_retrieval reads it.

    DIR/corpus.jsonl       {"_id", "title", "text"} per line
    DIR/queries.jsonl      {"_id", "text"} per line
    DIR/qrels/NAME.tsv     query-id, corpus-id, score (graded relevance)

A split is one qrels file; it may name a file of corpus ids to leave out of its index.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management.base import CommandError

DEFAULT_EXCLUDE = "nofaq-exclude.txt"

# A corpus entry or a query, as the JSON lines hold them.
Entry = dict[str, object]


@dataclass
class Split:
    name: str
    exclude_file: Path | None
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)


def read_jsonl(path: Path) -> list[Entry]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        for row in rows:
            if not row or row[0] == "query-id":
                continue
            qid, doc, score = row[0], row[1], int(row[2])
            qrels[qid][doc] = score
    return dict(qrels)


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a text file, stripped."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_splits(
    root: Path, names: list[str], exclude_default: str | None, *, note: Callable[[str], object]
) -> list[Split]:
    """`NAME` or `NAME:EXCLUDE_FILE` each; a missing qrels file is an error, a missing
    exclude file only a note (nothing is excluded then)."""
    splits = []
    for raw in names:
        name, _, own = raw.partition(":")
        exclude = own or exclude_default
        path = root / "qrels" / f"{name}.tsv"
        if not path.is_file():
            raise CommandError(f"{path} is missing")
        split = Split(name=name, exclude_file=(root / exclude) if exclude else None)
        split.qrels = read_qrels(path)
        if split.exclude_file is not None:
            if split.exclude_file.is_file():
                split.excluded = set(read_lines(split.exclude_file))
            else:
                note(f"note: {split.exclude_file} not found; nothing excluded")
        splits.append(split)
    return splits
