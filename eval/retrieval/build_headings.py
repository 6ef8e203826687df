#!/usr/bin/env python3
"""Make a headings-as-queries set from a corpus built by build_rst.py (BEIR layout).

    python3 build_headings.py --corpus DIR --out OUTDIR [--max-queries 80]
        [--skip changelog.rst --skip announce]

A different shape from the FAQ sets: the query is a section's heading ("Choosing an
import mode"), the judged passages are that section's passage(s) (grade 2), and, so
that the query's words are not simply in the title, every passage's title is cut to
its file name: the heading is gone from the index and must be found in the text.

Headings chosen: at least 3 words and 2 of them alphabetic words of 3+ letters,
not a version or release line (digits), not generic, used by exactly one section
in the corpus, not in a --skip file (prefix of the title's file part); sorted, then every
n-th so at most --max-queries remain. Standard library only; deterministic.
Writes corpus.jsonl, queries.jsonl, qrels/test.tsv.
"""
import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

GENERIC = {"example", "examples", "usage", "overview", "introduction", "notes", "features",
           "bug fixes", "parameters", "returns", "see also", "improvements"}
WORD = re.compile(r"[A-Za-z]{3,}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--max-queries", type=int, default=80)
    ap.add_argument("--skip", action="append", default=[])
    args = ap.parse_args()
    entries = [json.loads(line) for line in
               (args.corpus / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    sections = defaultdict(list)  # heading -> ids
    files = {}
    for e in entries:
        file, _, heading = e["title"].partition(" › ")
        files[e["_id"]] = file
        if heading:
            sections[heading].append((file, e["_id"]))
    chosen = []
    for heading, where in sorted(sections.items()):
        if len({f for f, _ in where}) != 1:
            continue  # the same heading in several files: ambiguous
        file = where[0][0]
        if any(file.startswith(s) for s in args.skip):
            continue
        words = heading.split()
        if len(words) < 3 or len(WORD.findall(heading)) < 2:
            continue
        if re.search(r"\d", heading) or heading.lower() in GENERIC:
            continue
        chosen.append((heading, [i for _, i in where]))
    step = max(1, -(-len(chosen) // args.max_queries))
    chosen = chosen[::step][: args.max_queries]
    out = args.out
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps({"_id": e["_id"], "title": files[e["_id"]], "text": e["text"]},
                               ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for n, (heading, _) in enumerate(chosen, start=1):
            f.write(json.dumps({"_id": f"h{n:03d}", "text": heading}, ensure_ascii=False) + "\n")
    rows = ["query-id\tcorpus-id\tscore"]
    for n, (_, ids) in enumerate(chosen, start=1):
        rows += [f"h{n:03d}\t{i}\t2" for i in ids]
    (out / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(entries)} passages, {len(chosen)} queries, {len(rows) - 1} judgements")


if __name__ == "__main__":
    main()
