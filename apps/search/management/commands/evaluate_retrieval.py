"""`manage.py evaluate_retrieval --beir DIR`: score retrieve() on a BEIR-layout data set.

    manage.py evaluate_retrieval --beir ../shared/eval/celerydocs
    manage.py evaluate_retrieval --beir DIR --split test --split test-nofaq --exclude-file
    manage.py evaluate_retrieval --beir DIR --mode hybrid --fusion weighted:w=0.5 --fusion rrf

What it does, in order:
1. Starts a temporary vector store owner on a temporary VECTOR_DATA_DIR (default;
   `--store configured` uses the configured one instead, e.g. a Qdrant server) and sends
   uploads to a temporary MEDIA_ROOT.
2. Ingests the corpus through the real pipeline (parse, chunk, embed, upsert): one
   Document per corpus entry, titled with the entry's title (its `_id` when it has none);
   the Document id → `_id` map turns hits back into corpus ids. document_ingest runs in
   this process, not on Celery, so no worker is needed and nothing reaches a broker.
   The ingestion writes its audit events like any other (document.indexed, ...).
3. Runs every judged query through retrieve() as a user who can read only the
   evaluation collection(s), and prints nDCG@10, Recall@10, Recall@100, MRR@10 (BEIR /
   pytrec_eval definitions, graded relevance, see apps/search/evaluation/metrics.py) and
   the latency p50/p95 of retrieve() (query embedding included) for each mode asked.
4. Deletes its collections, documents, users, groups, files and the temporary store.

Splits. `--split NAME` reads qrels/NAME.tsv; repeat it to score several splits on one
ingestion. `NAME:FILE` (or `--exclude-file [FILE]`, default nofaq-exclude.txt, for every
split given without its own) removes the corpus ids listed in FILE from that split's
index: those passages go to a second collection that the split's user cannot read, so
they are excluded inside the query, as if never indexed (only BM25's IDF still counts
them).

Fusions. `--fusion SPEC` scores a hybrid variant (apps/search/evaluation/fusions.py);
without one, the product's fusion is scored, through retrieve() itself.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings

from apps.core.migrations_check import require_migrated
from apps.knowledge.selectors import readable_collection_ids
from apps.retrieval.embeddings import embed_query
from apps.retrieval.tempstore import temporary_owner
from apps.search.evaluation.adapted import adapted_embedder, train_on
from apps.search.evaluation.dataset import (
    DEFAULT_EXCLUDE,
    Entry,
    Split,
    read_jsonl,
    read_splits,
)
from apps.search.evaluation.environment import Environment
from apps.search.evaluation.fusions import FusionVariant, configured_variant, parse_fusion
from apps.search.evaluation.lists import dump_query
from apps.search.evaluation.metrics import evaluate, percentile, run_from_ranking
from apps.search.search import candidates_for, retrieve, retrieve_with

ALL_MODES = ("dense", "sparse", "hybrid")
TOP_K = 100

# One row of the results table, as printed and as written to --json.
Row = dict[str, object]


class Command(BaseCommand):
    help = (
        "Ingest a BEIR-layout data set into a throw-away collection through the real "
        "pipeline (document_ingest runs in this process, not on Celery) and score "
        "retrieve() on it: nDCG@10, Recall@10, Recall@100, MRR@10, latency p50/p95. "
        "Starts its own temporary vector store owner unless --store configured."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--beir", type=Path, required=True, help="folder of the data set")
        parser.add_argument("--mode", choices=[*ALL_MODES, "all"], default="all")
        parser.add_argument(
            "--split",
            action="append",
            default=[],
            help="qrels/NAME.tsv, optionally NAME:EXCLUDE_FILE; repeatable (default: test)",
        )
        parser.add_argument(
            "--exclude-file",
            nargs="?",
            const=DEFAULT_EXCLUDE,
            default=None,
            help=f"corpus ids to leave out of the index (default file: {DEFAULT_EXCLUDE}) "
            "for every split given without its own",
        )
        parser.add_argument(
            "--fusion",
            action="append",
            default=[],
            help="hybrid fusion variant(s) to score, e.g. weighted:w=0.6,norm=minmax, "
            "rrf:k=60, rrf-store, rescue:n=1,at=2 (default: the configured one)",
        )
        parser.add_argument("--chunk-size", type=int, help="override CHUNK_SIZE_TOKENS")
        parser.add_argument("--chunk-overlap", type=int, help="override CHUNK_OVERLAP_TOKENS")
        parser.add_argument(
            "--store",
            choices=["temp", "configured"],
            default="temp",
            help="temp (default): a temporary owner process on a temporary folder; "
            "configured: the store in settings (running owner or QDRANT_URL)",
        )
        parser.add_argument(
            "--negatives",
            type=Path,
            help="text file of off-topic questions, one a line: reports how many "
            "retrieve() calls relevant, against the dev queries, per threshold",
        )
        parser.add_argument("--json", type=Path, help="also write the results here")
        parser.add_argument(
            "--adapt",
            action="store_true",
            help="then adapt the embedder on the corpus (never the queries), ingest again "
            "with it and score it too (apps/search/evaluation/adapted.py)",
        )
        parser.add_argument("--adapt-minutes", type=float, default=30.0)
        parser.add_argument("--adapt-pairs", type=int, default=4096)
        parser.add_argument(
            "--lists",
            type=Path,
            help="also write every judged query's dense and keyword candidates here, "
            "for evaluate_fusion (apps/search/evaluation/lists.py)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated()
        root: Path = options["beir"]
        for name in ("corpus.jsonl", "queries.jsonl"):
            if not (root / name).is_file():
                raise CommandError(f"{root / name} is missing: not a BEIR-layout folder")
        splits = read_splits(
            root, options["split"] or ["test"], options["exclude_file"], note=self.stderr.write
        )
        modes = list(ALL_MODES) if options["mode"] == "all" else [options["mode"]]
        fusions = [parse_fusion(s) for s in options["fusion"]] or [configured_variant()]
        corpus = read_jsonl(root / "corpus.jsonl")
        queries = {str(q["_id"]): str(q["text"]) for q in read_jsonl(root / "queries.jsonl")}
        negatives = []
        if options["negatives"]:
            negatives = [
                line.strip()
                for line in options["negatives"].read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")
            ]

        overrides: dict[str, object] = {}
        if options["chunk_size"]:
            overrides["CHUNK_SIZE_TOKENS"] = options["chunk_size"]
        if options["chunk_overlap"] is not None:
            overrides["CHUNK_OVERLAP_TOKENS"] = options["chunk_overlap"]
        media = Path(tempfile.mkdtemp(prefix="enclave-eval-media-"))
        overrides["MEDIA_ROOT"] = str(media)

        with ExitStack() as stack:
            stack.callback(shutil.rmtree, media, True)
            stack.enter_context(override_settings(**overrides))
            if options["store"] == "temp":
                stack.enter_context(temporary_owner())
            env = Environment()
            stack.callback(self._cleanup, env)
            results = self._run(
                env=env,
                corpus=corpus,
                queries=queries,
                splits=splits,
                modes=modes,
                fusions=fusions,
                negatives=negatives,
            )
            if options["lists"]:
                self._lists(env, root.name, queries, splits, options["lists"])
            if options["adapt"]:
                results += self._adapted(
                    env,
                    stack,
                    options,
                    corpus=corpus,
                    queries=queries,
                    splits=splits,
                    modes=modes,
                    fusions=fusions,
                    negatives=negatives,
                )
            if options["json"]:
                # Written before the clean-up, so a failing clean-up loses no results.
                options["json"].write_text(json.dumps(results, indent=2))

    def _cleanup(self, env: Environment) -> None:
        try:
            env.cleanup()
        except Exception as err:  # the results are printed; say what is left behind
            self.stderr.write(
                f"clean-up failed ({err}); rows named {env.tag}-* may be left in the database"
            )

    def _adapted(
        self, env: Environment, stack: ExitStack, options: dict[str, Any], **run: Any
    ) -> list[Row]:
        work = Path(tempfile.mkdtemp(prefix="enclave-eval-adapted-"))
        stack.callback(shutil.rmtree, work, True)
        queries, splits = run["queries"], run["splits"]
        judged = sorted({queries[q] for s in splits for q in s.qrels if q in queries})
        report = train_on(
            env,
            exclude=judged,
            out=work / "model",
            max_minutes=options["adapt_minutes"],
            max_pairs=options["adapt_pairs"],
            log=self.stdout.write,
        )
        self.stdout.write(f"--- the adapted embedder ({report.steps} steps), ingested again:")
        stack.enter_context(adapted_embedder(work / "model"))
        if options["store"] == "temp":
            stack.enter_context(temporary_owner())
        adapted = Environment()
        stack.callback(self._cleanup, adapted)
        rows = self._run(env=adapted, **run)
        for row in rows:
            row["embedder"] = "adapted"
            row["training"] = report.as_dict()
        if options["lists"]:
            out: Path = options["lists"]
            name = f"{options['beir'].name}+adapted"
            self._lists(adapted, name, queries, splits, out.with_name(f"{out.stem}-adapted.json"))
        return rows

    def _lists(
        self, env: Environment, name: str, queries: dict[str, str], splits: list[Split], out: Path
    ) -> None:
        dumped: dict[str, object] = {}
        for split in splits:
            collection_ids = readable_collection_ids(env.user(hidden=bool(split.excluded)))
            judged = {q: r for q, r in split.qrels.items() if q in queries}
            dumped[split.name] = {
                "qrels": judged,
                "queries": {
                    qid: dump_query(
                        candidates_for(collection_ids, queries[qid]), env.doc_ids, limit=TOP_K
                    )
                    for qid in judged
                },
            }
        out.write_text(json.dumps({"name": name, "splits": dumped}))
        self.stdout.write(f"wrote the candidate lists of {len(splits)} split(s) to {out}")

    # --- the run -----------------------------------------------------------------------

    def _run(
        self,
        *,
        env: Environment,
        corpus: list[Entry],
        queries: dict[str, str],
        splits: list[Split],
        modes: list[str],
        fusions: list[FusionVariant],
        negatives: list[str],
    ) -> list[Row]:
        excluded = set().union(*(s.excluded for s in splits))
        env.ingest(corpus, excluded, out=self.stdout.write, progress=self.stderr.write)
        embed_query("warm up")  # the model load is not a query's latency

        configured = configured_variant()
        results: list[Row] = []
        header = (
            f"{'split':<12} {'mode':<7} {'fusion':<34} {'n':>3} {'nDCG@10':>8} "
            f"{'R@10':>6} {'R@100':>6} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}"
        )
        self.stdout.write(header)
        top_dense: dict[str, float] = {}
        for split in splits:
            user = env.user(hidden=bool(split.excluded))
            judged = {q: r for q, r in split.qrels.items() if q in queries}
            if len(judged) < len(split.qrels):
                self.stderr.write(
                    f"note: {len(split.qrels) - len(judged)} judged queries of {split.name} "
                    "are not in queries.jsonl"
                )
            variants = [
                (mode, fusion)
                for mode in modes
                for fusion in (fusions if mode == "hybrid" else [configured])
            ]
            for mode, fusion in variants:
                runs: dict[str, dict[str, float]] = {}
                latencies = []
                for qid in judged:
                    started = time.perf_counter()
                    if fusion == configured:
                        r = retrieve(user=user, question=queries[qid], k=TOP_K, mode=mode)
                    else:
                        r = retrieve_with(
                            user=user, question=queries[qid], k=TOP_K, mode=mode, hybrid=fusion.rank
                        )
                    latencies.append((time.perf_counter() - started) * 1000)
                    runs[qid] = run_from_ranking(
                        [env.doc_ids[h.document_id] for h in r.hits], [h.score for h in r.hits]
                    )
                    if mode == "dense" and r.hits:
                        top_dense[f"{split.name}/{qid}"] = r.hits[0].score
                scores = evaluate(judged, runs)
                label = fusion.label if mode == "hybrid" else "-"
                self.stdout.write(
                    f"{split.name:<12} {mode:<7} {label:<34} {len(judged):>3} "
                    f"{scores['nDCG@10']:>8.3f} {scores['Recall@10']:>6.3f} "
                    f"{scores['Recall@100']:>6.3f} {scores['MRR@10']:>7.3f} "
                    f"{percentile(latencies, 50):>7.1f} {percentile(latencies, 95):>7.1f}"
                )
                results.append(
                    {
                        "split": split.name,
                        "mode": mode,
                        "fusion": label,
                        "queries": len(judged),
                        **scores,
                        "p50_ms": percentile(latencies, 50),
                        "p95_ms": percentile(latencies, 95),
                    }
                )
        self._relevance(env, queries, splits, negatives, top_dense)
        return results

    def _relevance(
        self,
        env: Environment,
        queries: dict[str, str],
        splits: list[Split],
        negatives: list[str],
        top_dense: dict[str, float],
    ) -> None:
        """How the `relevant` threshold (best dense cosine) separates the data set's own
        questions from off-topic ones."""
        if not top_dense:
            questions = [queries[q] for s in splits for q in s.qrels if q in queries]
            user = env.user(hidden=False)
            for i, question in enumerate(questions):
                r = retrieve(user=user, question=question, k=1, mode="dense")
                if r.hits:
                    top_dense[str(i)] = r.hits[0].score
        on_topic = sorted(top_dense.values())
        off_topic = []
        user = env.user(hidden=False)
        for question in negatives:
            r = retrieve(user=user, question=question, k=1, mode="dense")
            off_topic.append(r.hits[0].score if r.hits else -1.0)
        self.stdout.write(
            f"best dense cosine of the judged queries: min {on_topic[0]:.3f}, "
            f"p10 {percentile(on_topic, 10):.3f}, median {statistics.median(on_topic):.3f}"
            if on_topic
            else "no dense hits"
        )
        if off_topic:
            self.stdout.write(
                f"best dense cosine of {len(off_topic)} off-topic questions: max "
                f"{max(off_topic):.3f}, p90 {percentile(off_topic, 90):.3f}, median "
                f"{statistics.median(off_topic):.3f}"
            )
        current = settings.RETRIEVAL_MIN_SCORE
        for threshold in sorted({0.2, 0.25, 0.3, 0.35, 0.4, 0.45, current}):
            kept = sum(s >= threshold for s in on_topic)
            line = f"  threshold {threshold:.2f}: judged queries relevant {kept}/{len(on_topic)}"
            if off_topic:
                wrong = sum(s >= threshold for s in off_topic)
                line += f", off-topic relevant {wrong}/{len(off_topic)}"
            if threshold == current:
                line += "  <- RETRIEVAL_MIN_SCORE"
            self.stdout.write(line)
