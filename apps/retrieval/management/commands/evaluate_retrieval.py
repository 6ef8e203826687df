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
   pytrec_eval definitions, graded relevance, see apps/retrieval/metrics.py) and the
   latency p50/p95 of retrieve() (query embedding included) for each mode asked.
4. Deletes its collections, documents, users, groups, files and the temporary store.

Splits. `--split NAME` reads qrels/NAME.tsv; repeat it to score several splits on one
ingestion. `NAME:FILE` (or `--exclude-file [FILE]`, default nofaq-exclude.txt, for every
split given without its own) removes the corpus ids listed in FILE from that split's
index: those passages go to a second collection that the split's user cannot read, so
they are excluded inside the query, as if never indexed (only BM25's IDF still counts
them).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.retrieval.metrics import evaluate, percentile, run_from_ranking

ALL_MODES = ("dense", "sparse", "hybrid")
DEFAULT_EXCLUDE = "nofaq-exclude.txt"
TOP_K = 100


@dataclass
class Split:
    name: str
    exclude_file: Path | None
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)


def parse_fusion(spec: str) -> Any:
    """`method[:key=value,...]`, keys w (dense weight), norm, c (candidates), k (RRF k),
    n (rescued sparse hits), at (rescue position), prf/prft/prfw (feedback chunks, terms,
    weight); unset keys keep the configured value."""
    from dataclasses import replace

    from apps.retrieval.search import default_fusion

    method, _, rest = spec.partition(":")
    names = {
        "w": ("dense_weight", float),
        "norm": ("norm", str),
        "c": ("candidates", int),
        "k": ("rrf_k", int),
        "n": ("rescue", int),
        "at": ("rescue_at", int),
        "prf": ("prf_docs", int),
        "prft": ("prf_terms", int),
        "prfw": ("prf_weight", float),
    }
    changes: dict[str, Any] = {"method": method}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        if key not in names:
            raise CommandError(f"unknown fusion key {key!r} in {spec!r}; use {sorted(names)}")
        attr, kind = names[key]
        changes[attr] = kind(value)
    try:
        return replace(default_fusion(), **changes)
    except (TypeError, ValueError) as err:
        raise CommandError(f"bad --fusion {spec!r}: {err}") from err


def read_jsonl(path: Path) -> list[dict[str, Any]]:
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

    def handle(self, *args: Any, **options: Any) -> None:
        from django.test.utils import override_settings

        from apps.retrieval.search import default_fusion

        root: Path = options["beir"]
        for name in ("corpus.jsonl", "queries.jsonl"):
            if not (root / name).is_file():
                raise CommandError(f"{root / name} is missing: not a BEIR-layout folder")
        splits = self._splits(root, options["split"] or ["test"], options["exclude_file"])
        modes = list(ALL_MODES) if options["mode"] == "all" else [options["mode"]]
        fusions = [parse_fusion(s) for s in options["fusion"]] or [default_fusion()]
        corpus = read_jsonl(root / "corpus.jsonl")
        queries = {str(q["_id"]): str(q["text"]) for q in read_jsonl(root / "queries.jsonl")}
        negatives = []
        if options["negatives"]:
            negatives = [
                line.strip()
                for line in options["negatives"].read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")
            ]

        overrides: dict[str, Any] = {}
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
                from apps.retrieval.tempstore import temporary_owner

                stack.enter_context(temporary_owner())
            env = _Environment()
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
            if options["json"]:
                # Written before the clean-up, so a failing clean-up loses no results.
                options["json"].write_text(json.dumps(results, indent=2))

    def _cleanup(self, env: _Environment) -> None:
        try:
            env.cleanup()
        except Exception as err:  # the results are printed; say what is left behind
            self.stderr.write(
                f"clean-up failed ({err}); rows named {env.tag}-* may be left in the database"
            )

    # --- set-up ------------------------------------------------------------------------

    def _splits(self, root: Path, names: list[str], exclude_default: str | None) -> list[Split]:
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
                    split.excluded = {
                        line.strip()
                        for line in split.exclude_file.read_text(encoding="utf-8").splitlines()
                        if line.strip()
                    }
                else:
                    self.stderr.write(f"note: {split.exclude_file} not found; nothing excluded")
            splits.append(split)
        return splits

    def _ingest(self, env: _Environment, corpus: list[dict[str, Any]], excluded: set[str]) -> None:
        from django.core.files.base import ContentFile

        from apps.knowledge.models import Document
        from apps.core.labels import Label
        from apps.knowledge.services import document_ingest

        main = env.collection("main")
        hidden = env.collection("excluded") if excluded else None
        started = time.perf_counter()
        failed = []
        for n, entry in enumerate(corpus, start=1):
            cid = str(entry["_id"])
            text = str(entry.get("text") or "")
            title = str(entry.get("title") or "").strip() or cid
            data = text.encode("utf-8")
            collection = hidden if (hidden is not None and cid in excluded) else main
            doc = Document(
                collection=collection,
                title=title[:500],
                original_name=f"{cid}.txt"[:500],
                # Hashed with the id, so two corpus entries with equal text stay two
                # documents (the unique-content rule would otherwise refuse the second).
                sha256=hashlib.sha256(cid.encode() + b"\0" + data).hexdigest(),
                size=len(data),
                label=Label.PUBLIC,
            )
            doc.file.save(f"{uuid.uuid4().hex}.txt", ContentFile(data), save=False)
            doc.save()
            env.doc_ids[doc.pk] = cid
            document_ingest(document_id=doc.pk, worker="evaluate_retrieval")
            doc.refresh_from_db(fields=["status", "failure_reason"])
            if doc.status != Document.Status.INDEXED:
                failed.append((cid, doc.failure_reason))
            if n % 200 == 0:
                self.stderr.write(f"  ingested {n}/{len(corpus)}")
        seconds = time.perf_counter() - started
        chunks = sum(
            Document.objects.filter(pk__in=env.doc_ids).values_list("chunk_count", flat=True)
        )
        self.stdout.write(
            f"ingested {len(corpus)} documents ({chunks} chunks, chunk size "
            f"{settings.CHUNK_SIZE_TOKENS}/{settings.CHUNK_OVERLAP_TOKENS} overlap) in "
            f"{seconds:.0f} s, {len(failed)} failed"
        )
        for cid, reason in failed[:10]:
            self.stdout.write(f"  failed {cid}: {reason}")

    # --- the run -----------------------------------------------------------------------

    def _run(
        self,
        *,
        env: _Environment,
        corpus: list[dict[str, Any]],
        queries: dict[str, str],
        splits: list[Split],
        modes: list[str],
        fusions: list[Any],
        negatives: list[str],
    ) -> list[dict[str, Any]]:
        from apps.retrieval.embeddings import embed_query
        from apps.retrieval.search import default_fusion, retrieve, retrieve_with

        excluded = set().union(*(s.excluded for s in splits))
        self._ingest(env, corpus, excluded)
        embed_query("warm up")  # the model load is not a query's latency

        configured = default_fusion()
        results: list[dict[str, Any]] = []
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
                            user=user, question=queries[qid], k=TOP_K, mode=mode, fusion=fusion
                        )
                    latencies.append((time.perf_counter() - started) * 1000)
                    runs[qid] = run_from_ranking(
                        [env.doc_ids[h.document_id] for h in r.hits], [h.score for h in r.hits]
                    )
                    if mode == "dense" and r.hits:
                        top_dense[f"{split.name}/{qid}"] = r.hits[0].score
                scores = evaluate(judged, runs)
                label = _fusion_label(fusion) if mode == "hybrid" else "-"
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
        env: _Environment,
        queries: dict[str, str],
        splits: list[Split],
        negatives: list[str],
        top_dense: dict[str, float],
    ) -> None:
        """How the `relevant` threshold (best dense cosine) separates the data set's own
        questions from off-topic ones."""
        from apps.retrieval.search import retrieve

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


def _fusion_label(fusion: Any) -> str:
    label = _method_label(fusion)
    if fusion.prf_docs:
        label += f" prf={fusion.prf_docs}/{fusion.prf_terms}/{fusion.prf_weight:g}"
    return label


def _method_label(fusion: Any) -> str:
    if fusion.method == "weighted":
        return f"weighted w={fusion.dense_weight:g} {fusion.norm} c={fusion.candidates}"
    if fusion.method == "rrf":
        return f"rrf k={fusion.rrf_k} w={fusion.dense_weight:g} c={fusion.candidates}"
    if fusion.method == "rrf-store":
        return f"rrf-store k={fusion.rrf_k} c={fusion.candidates}"
    return f"rescue n={fusion.rescue} at={fusion.rescue_at} c={fusion.candidates}"


class _Environment:
    """The throw-away rows of one evaluation, removed by cleanup() whatever happened."""

    def __init__(self) -> None:
        self.tag = f"eval-{uuid.uuid4().hex[:8]}"
        self.collections: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}
        self.users: dict[bool, Any] = {}
        self.doc_ids: dict[int, str] = {}

    def collection(self, part: str) -> Any:
        from django.contrib.auth.models import Group

        from apps.knowledge.models import Collection
        from apps.core.labels import Label

        group = Group.objects.create(name=f"{self.tag}-{part}")
        collection = Collection.objects.create(
            name=f"{self.tag}-{part}", description="evaluate_retrieval", default_label=Label.PUBLIC
        )
        collection.groups.set([group])
        self.groups[part] = group
        self.collections[part] = collection
        return collection

    def user(self, *, hidden: bool) -> Any:
        """The reader of the main collection only (hidden=True) or of everything."""
        from django.contrib.auth.models import User

        if hidden not in self.users:
            user = User.objects.create_user(f"{self.tag}-{'main' if hidden else 'all'}")
            parts = ["main"] if hidden else list(self.groups)
            user.groups.set([self.groups[p] for p in parts])
            self.users[hidden] = user
        return self.users[hidden]

    def cleanup(self) -> None:
        from apps.knowledge.models import Document
        from apps.retrieval.store import get_store
        from apps.retrieval.store.protocol import Filter, StoreError

        if self.collections:
            try:
                ids = [c.pk for c in self.collections.values()]
                get_store().delete(Filter.of(collection_id=ids))
            except StoreError:
                pass  # a temporary store goes away with its folder anyway
        Document.objects.filter(pk__in=list(self.doc_ids)).delete()
        for collection in self.collections.values():
            Document.objects.filter(collection=collection).delete()
            collection.delete()
        for user in self.users.values():
            user.delete()
        for group in self.groups.values():
            group.delete()
