#!/usr/bin/env python3
"""Merge several small BEIR-layout sets into one: ids prefixed with the set's name.

    python3 merge.py --out DIR SET_DIR [SET_DIR ...]

Each input is a folder made by build_rst.py (corpus.jsonl, queries.jsonl,
qrels/test.tsv, qrels/test-nofaq.tsv, nofaq-exclude.txt). Corpus, query and
qrels ids become `<folder name>:<id>`; titles become `<folder name>/<title>`,
so passages of different projects with the same file name stay apart.
Standard library only; deterministic (inputs in the order given).
"""
import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("sets", nargs="+", type=Path)
    args = ap.parse_args()
    out = args.out
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus, queries, exclude = [], [], []
    qrels = {"test": [], "test-nofaq": []}
    for root in args.sets:
        name = root.name
        for line in (root / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            e = json.loads(line)
            corpus.append({"_id": f"{name}:{e['_id']}", "title": f"{name}/{e['title']}",
                           "text": e["text"]})
        for line in (root / "queries.jsonl").read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            q["_id"] = f"{name}:{q['_id']}"
            queries.append(q)
        for split in qrels:
            path = root / "qrels" / f"{split}.tsv"
            for row in path.read_text(encoding="utf-8").splitlines()[1:]:
                qid, doc, score = row.split("\t")
                qrels[split].append(f"{name}:{qid}\t{name}:{doc}\t{score}")
        ex = root / "nofaq-exclude.txt"
        exclude += [f"{name}:{i}" for i in ex.read_text(encoding="utf-8").split()]
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for e in corpus:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    for split, rows in qrels.items():
        (out / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    (out / "nofaq-exclude.txt").write_text("".join(i + "\n" for i in exclude), encoding="utf-8")
    print(f"{len(corpus)} passages, {len(queries)} queries, "
          f"{len(qrels['test'])} + {len(qrels['test-nofaq'])} judgements")


if __name__ == "__main__":
    main()
