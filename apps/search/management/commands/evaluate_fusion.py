"""`manage.py evaluate_fusion --lists FILE ... --rule SPEC ...`: fusion rules, offline.

    manage.py evaluate_retrieval --beir DIR --split test --lists var/eval/DIR.json
    manage.py evaluate_fusion --lists var/eval/*.json --rule fixed:w=0.6 --rule query

Scores each rule (apps/search/evaluation/query_fusions.py) on the dumped candidate lists
of every split of every file: nDCG@10 and Recall@100 per split, then each rule's worst
split, and its worst margin over the better of dense and sparse alone (negative: the
rule lost to a single list somewhere); splits of fewer than --min-queries queries (10)
are printed but left out of both. Rules are listed best worst-split first, the way
the product's rule is chosen (README "Retrieval"). No store, no model: seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.search.evaluation.lists import SplitLists, load
from apps.search.evaluation.query_fusions import parse_rule

DEFAULT_RULES = ["dense", "sparse", "fixed:w=0.6", "query"]


class Command(BaseCommand):
    help = "Score fusion rules on candidate lists written by evaluate_retrieval --lists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lists", type=Path, nargs="+", required=True)
        parser.add_argument("--rule", action="append", default=[], help="repeatable")
        parser.add_argument("--metric", default="nDCG@10", help="what 'worst' ranks by")
        parser.add_argument(
            "--min-queries",
            type=int,
            default=10,
            help="splits with fewer queries are printed but not counted in worst or margin",
        )
        parser.add_argument("--json", type=Path, help="also write the table here")

    def handle(self, *args: Any, **options: Any) -> None:
        splits: list[SplitLists] = []
        for path in options["lists"]:
            if not path.is_file():
                raise CommandError(f"{path} is missing")
            splits.extend(load(path))
        specs = list(dict.fromkeys(["dense", "sparse", *(options["rule"] or DEFAULT_RULES)]))
        metric = options["metric"]
        table = {spec: {s.label: s.score(parse_rule(spec)) for s in splits} for spec in specs}
        for spec in specs:
            if metric not in next(iter(table[spec].values()), {metric: 0}):
                raise CommandError(f"unknown metric {metric!r}")
        single = {
            s.label: max(table["dense"][s.label][metric], table["sparse"][s.label][metric])
            for s in splits
        }
        all_labels = [s.label for s in splits]
        labels = [s.label for s in splits if len(s.qrels) >= options["min_queries"]] or all_labels
        width = max(8, *(len(label) for label in labels))
        self.stdout.write(
            f"{metric} per split (queries): "
            + ", ".join(f"{s.label} ({len(s.qrels)})" for s in splits)
        )
        header = f"{'rule':<36} " + " ".join(f"{label:>{width}}" for label in all_labels)
        self.stdout.write(header + f" {'worst':>7} {'margin':>7} {'R@100 worst':>11}")

        def worst(spec: str) -> float:
            return min(table[spec][label][metric] for label in labels)

        rows = []
        for spec in sorted(specs, key=lambda sp: -worst(sp)):
            margin = min(table[spec][label][metric] - single[label] for label in labels)
            recall = min(table[spec][label]["Recall@100"] for label in labels)
            cells = " ".join(f"{table[spec][label][metric]:>{width}.3f}" for label in all_labels)
            self.stdout.write(
                f"{spec:<36} {cells} {worst(spec):>7.3f} {margin:>+7.3f} {recall:>11.3f}"
            )
            rows.append(
                {"rule": spec, "splits": table[spec], "worst": worst(spec), "margin": margin}
            )
        if options["json"]:
            options["json"].write_text(json.dumps(rows, indent=2))
