"""retrieve(): only readable chunks, the filter inside every query, fail closed.

Real parts: the `manage.py vectorstore` owner process (live_vectorstore), the packaged
MiniLM model, PostgreSQL. Documents go through the real pipeline (document_create, then
document_ingest in this process: parse, chunk, embed, upsert). The tests run inside a
rolled-back transaction, so document_create's on-commit enqueue never fires and no Celery
worker is involved; the points stay in the session's store, under collection ids that
PostgreSQL never hands out twice, so tests cannot see each other's points.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.labels import Label
from apps.knowledge import ingestion, services
from apps.knowledge.models import Collection, Document
from apps.knowledge.selectors import readable_collection_ids
from apps.retrieval.store import StoreUnavailable, get_store
from apps.retrieval.store.protocol import Filter
from apps.retrieval.store.socket_client import SocketStore
from apps.retrieval.versions import active_version
from apps.search.search import Retrieval, retrieve

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("live_vectorstore")]

HANDBOOK = """# Warehouse robots

The Pathfinder robot's battery lasts nine hours on a single charge. Charging docks are
next to loading bay three.

# Safety

Pathfinder robots stop when a person steps inside the yellow floor markings.
"""
NIGHTJAR = """# Project Nightjar

Project Nightjar is the secret acquisition of a battery maker, budget four million euros.
Only the board may discuss the Nightjar battery deal.
"""
PAYROLL = """# Payroll calendar

Salaries are paid on the twenty-fifth of each month; the payroll team closes on the 20th.
"""

SECRET_WORDS = ("nightjar", "acquisition", "four million")


def ingest(collection: Collection, name: str, text: str, *, title: str | None = None) -> Document:
    upload = SimpleUploadedFile(name, text.encode(), content_type="text/markdown")
    doc, _ = services.document_create(
        collection=collection, upload=upload, user=None, title=title, label=Label.INTERNAL
    )
    ingestion.document_ingest(document_id=doc.pk)
    doc.refresh_from_db()
    assert doc.status == Document.Status.INDEXED, doc.failure_reason
    return doc


@dataclass
class World:
    group_a: Group
    group_b: Group
    ops: Collection
    board: Collection
    handbook: Document
    nightjar: Document
    alice: User  # group A
    bob: User  # group B
    nobody: User  # no groups


@pytest.fixture
def world() -> World:
    group_a = Group.objects.create(name="Operations")
    group_b = Group.objects.create(name="Board")
    ops = services.collection_create(name="Ops", actor=None, groups=[group_a])
    board = services.collection_create(name="Board papers", actor=None, groups=[group_b])
    handbook = ingest(ops, "robots.md", HANDBOOK, title="Robot handbook")
    ingest(ops, "payroll.md", PAYROLL, title="Payroll calendar")
    nightjar = ingest(board, "nightjar.md", NIGHTJAR, title="Nightjar board memo")
    alice = User.objects.create_user("alice")
    alice.groups.add(group_a)
    bob = User.objects.create_user("bob")
    bob.groups.add(group_b)
    nobody = User.objects.create_user("nobody")
    return World(group_a, group_b, ops, board, handbook, nightjar, alice, bob, nobody)


class RecordingStore:
    """The real store client, with every call and its filter written down."""

    QUERIES = ("query_dense", "query_sparse", "query_hybrid", "count", "scroll")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, Filter | None]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            flt = kwargs.get("flt")
            if flt is None:
                flt = next((a for a in args if isinstance(a, Filter)), None)
            self.calls.append((name, flt))
            return method(*args, **kwargs)

        return recorded


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> RecordingStore:
    rec = RecordingStore(get_store())
    monkeypatch.setattr("apps.retrieval.store.get_store", lambda: rec)
    return rec


def _everything(r: Retrieval) -> str:
    return " ".join(f"{h.title} {h.section} {h.text}" for h in r.hits).lower()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_group_a_never_receives_a_chunk_or_title_of_group_b(world, recorder, mode):
    # The question is about B's memo, and k is far larger than A's whole collection: the
    # only way for A to miss B's chunk is the filter inside the query.
    r = retrieve(user=world.alice, question="Nightjar battery acquisition budget", k=50, mode=mode)
    assert r.collection_ids == [world.ops.pk]
    assert r.mode == mode
    assert {h.collection_id for h in r.hits} <= {world.ops.pk}
    assert world.nightjar.pk not in {h.document_id for h in r.hits}
    text = _everything(r)
    assert not any(word in text for word in SECRET_WORDS)
    assert "nightjar board memo" not in text

    # Bob, who may read the memo, does find it with the same question.
    r = retrieve(user=world.bob, question="Nightjar battery acquisition budget", k=5, mode=mode)
    assert r.hits and r.hits[0].document_id == world.nightjar.pk
    assert r.hits[0].title == "Nightjar board memo"


def test_hits_carry_the_payload_of_the_chunk(world):
    r = retrieve(user=world.alice, question="How long does the robot battery last?", k=3)
    top = r.hits[0]
    assert top.document_id == world.handbook.pk
    assert top.collection_id == world.ops.pk
    assert top.title == "Robot handbook"
    assert "nine hours" in top.text
    assert top.section == "Warehouse robots"
    assert top.label == "internal"
    assert world.handbook.text[top.char_start : top.char_end] == top.text
    assert [h.score for h in r.hits] == sorted((h.score for h in r.hits), reverse=True)
    assert r.relevant


def test_every_store_query_carries_the_collection_filter(world, recorder):
    for mode in ("hybrid", "dense", "sparse"):
        retrieve(user=world.alice, question="When are salaries paid?", mode=mode)
        retrieve(user=world.bob, question="When are salaries paid?", mode=mode)
    assert recorder.calls, "the recorder saw the queries"
    # The reader's collections, and the active embedder version's points only.
    active = [active_version().pk]
    expected = {
        Filter.of(collection_id=[world.ops.pk], embedder=active),
        Filter.of(collection_id=[world.board.pk], embedder=active),
    }
    for name, flt in recorder.calls:
        assert name in RecordingStore.QUERIES, name
        assert flt is not None and flt in expected, (name, flt)
        assert set(flt.must) == {"collection_id", "embedder"} and flt.must["collection_id"]


def test_user_without_groups_gets_nothing_and_no_query_is_sent(world, monkeypatch):
    def no_store() -> None:
        raise AssertionError("retrieve() must not reach the store for a user who reads nothing")

    monkeypatch.setattr("apps.retrieval.store.get_store", no_store)
    for user in (world.nobody, _inactive(world)):
        for mode in ("hybrid", "dense", "sparse"):
            r = retrieve(user=user, question="robot battery", mode=mode)
            assert r == Retrieval(hits=[], collection_ids=[], mode=mode, relevant=False)
    # A group with no collections reads nothing either.
    empty = Group.objects.create(name="Empty")
    world.nobody.groups.add(empty)
    assert retrieve(user=world.nobody, question="robot battery").collection_ids == []


def _inactive(world: World) -> User:
    user = User.objects.create_user("carol", is_active=False)
    user.groups.add(world.group_a)
    return user


def test_revoking_a_group_takes_effect_on_the_next_retrieve(world):
    question = "How long does the robot battery last?"
    assert world.handbook.pk in {
        h.document_id for h in retrieve(user=world.alice, question=question).hits
    }

    services.collection_set_access(collection=world.ops, groups=[], actor=None)
    r = retrieve(user=world.alice, question=question)
    assert r.hits == [] and r.collection_ids == [] and not r.relevant

    # Granting it back, then taking the user out of the group, works the same way.
    services.collection_set_access(collection=world.ops, groups=[world.group_a], actor=None)
    assert retrieve(user=world.alice, question=question).hits
    world.alice.groups.remove(world.group_a)
    assert retrieve(user=world.alice, question=question).hits == []


def test_relevance_threshold_separates_on_and_off_topic_questions(world):
    assert retrieve(user=world.alice, question="When are salaries paid each month?").relevant
    off = retrieve(user=world.alice, question="Who painted the ceiling of the Sistine Chapel?")
    assert off.hits, "hits are still returned; the caller decides what to do with them"
    assert not off.relevant


def test_store_unavailable_propagates(world, monkeypatch, tmp_path):
    dead = SocketStore(path=tmp_path / "nobody-listens.sock", timeout=2)
    monkeypatch.setattr("apps.retrieval.store.get_store", lambda: dead)
    with pytest.raises(StoreUnavailable):
        retrieve(user=world.alice, question="robot battery")


def test_bad_arguments_are_refused(world):
    with pytest.raises(ValueError):
        retrieve(user=world.alice, question="robot", mode="fuzzy")
    with pytest.raises(ValueError):
        retrieve(user=world.alice, question="robot", k=0)
    assert retrieve(user=world.alice, question="   ").hits == []


# --- property: random groups and grants, only readable chunks come back -----------------

N_COLLECTIONS = 5
N_GROUPS = 4
TOPICS = [
    "The forklift inspection happens every Monday before the first shift.",
    "Expense claims need a receipt and the approval of a line manager.",
    "The cafeteria serves vegetarian lunch on Thursdays.",
    "Backups of the file server run nightly and are kept for ninety days.",
    "Visitors must sign in at reception and wear a badge at all times.",
]
QUESTIONS = [
    "When is the forklift inspected?",
    "How do I claim expenses?",
    "What is for lunch on Thursday?",
    "How long are backups kept?",
    "What must visitors do?",
    "Monday receipt badge lunch backup",
]


@pytest.fixture
def grid() -> tuple[list[Group], list[Collection], User]:
    groups = [Group.objects.create(name=f"grid-group-{i}") for i in range(N_GROUPS)]
    collections = []
    for i in range(N_COLLECTIONS):
        collection = services.collection_create(name=f"grid-{i}", actor=None)
        # Every collection holds every topic, so any question has candidates in each.
        for j, topic in enumerate(TOPICS):
            ingest(collection, f"c{i}-t{j}.md", f"# Topic {j}\n\n{topic}\n", title=f"grid {i}/{j}")
        collections.append(collection)
    user = User.objects.create_user("grid-user")
    return groups, collections, user


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    grants=st.lists(
        st.sets(st.integers(0, N_GROUPS - 1)), min_size=N_COLLECTIONS, max_size=N_COLLECTIONS
    ),
    member_of=st.sets(st.integers(0, N_GROUPS - 1)),
    active=st.booleans(),
    question=st.sampled_from(QUESTIONS),
    mode=st.sampled_from(["hybrid", "dense", "sparse"]),
    k=st.integers(1, 30),
)
def test_retrieve_returns_only_readable_chunks(
    grid, recorder, grants, member_of, active, question, mode, k
):
    groups, collections, user = grid
    recorder.calls.clear()
    for collection, granted in zip(collections, grants, strict=True):
        collection.groups.set([groups[g] for g in granted])
    user.groups.set([groups[g] for g in member_of])
    user.is_active = active
    user.save(update_fields=["is_active"])

    readable = (
        {c.pk for c, granted in zip(collections, grants, strict=True) if granted & member_of}
        if active
        else set()
    )
    r = retrieve(user=user, question=question, k=k, mode=mode)
    assert set(r.collection_ids) == readable
    assert {h.collection_id for h in r.hits} <= readable
    docs = set(Document.objects.filter(collection_id__in=readable).values_list("pk", flat=True))
    assert {h.document_id for h in r.hits} <= docs
    if not readable:
        assert r.hits == [] and not r.relevant
        assert recorder.calls == [], "no query at all for a user who reads nothing"
    else:
        assert recorder.calls
        assert {flt for _, flt in recorder.calls} == {
            Filter.of(collection_id=sorted(readable), embedder=[active_version().pk])
        }
        if mode != "sparse":
            # Dense search always finds the nearest readable chunks; k of them at most.
            assert 0 < len(r.hits) <= k


def test_readable_collection_ids_reads_the_database(world):
    assert readable_collection_ids(world.alice) == [world.ops.pk]
    world.bob.groups.add(world.group_a)
    assert readable_collection_ids(world.bob) == sorted([world.ops.pk, world.board.pk])
    assert readable_collection_ids(None) == []
    assert readable_collection_ids(AnonymousUser()) == []


def test_only_the_search_module_sends_search_queries():
    """retrieve() is the one search path: no other module of the product calls a query
    method of the store (the backends themselves and the owner process aside)."""
    root = Path(__file__).resolve().parents[2]
    allowed = {Path("apps/search/search.py")}
    pattern = re.compile(r"\.(query_dense|query_sparse|query_hybrid)\(")
    offenders = [
        str(path.relative_to(root))
        for base in ("apps", "workers")
        for path in (root / base).rglob("*.py")
        if path.relative_to(root) not in allowed
        and not path.relative_to(root).parts[:3] == ("apps", "retrieval", "store")
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
