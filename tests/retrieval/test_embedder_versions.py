"""Embedder versions: a blue/green re-index with the real store, worker and models.

"Another model" is the packaged MiniLM saved to a temporary directory with its word
embeddings nudged by seeded noise: its vectors differ from the packaged model's (so a
query mixing versions would show), and it still finds the right passage.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Collection, Document
from apps.knowledge.points import point_id
from apps.knowledge.reindex import embedder_backfill
from apps.retrieval import sparse, versions
from apps.retrieval.embeddings import embed_query, model_path
from apps.retrieval.models import EmbedderVersion
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter, Point
from apps.search.search import retrieve
from tests.conftest import wait_for_documents

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_worker")]

DOCS = {
    "vpn.md": "# VPN\n\nConnect to the office VPN with the WireGuard client and your badge PIN.\n",
    "leave.md": "# Leave\n\nEvery employee has 27 days of paid leave a year, booked in Workday.\n",
    "kitchen.md": "# Kitchen\n\nThe espresso machine on floor 3 is descaled every Friday.\n",
}
LATE = "# Parking\n\nVisitor parking permits are issued by the reception desk in hall B.\n"


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from sentence_transformers import SentenceTransformer

    path = tmp_path_factory.mktemp("embedders") / "noisy"
    model = SentenceTransformer(model_path(), device="cpu")
    weights = model[0].auto_model.embeddings.word_embeddings.weight
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        weights.add_(torch.randn(weights.shape, generator=generator) * weights.std() * 0.5)
    model.save(str(path))
    return str(path)


@pytest.fixture
def world() -> dict:
    admin = User.objects.create_user("emb-admin", password="pw-emb-admin-1")
    admin.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    readers = Group.objects.create(name="Readers")
    reader = User.objects.create_user("emb-reader", password="pw-emb-reader-1")
    reader.groups.add(readers, Group.objects.get(name=EMPLOYEE))
    collection = services.collection_create(
        name="Handbook", actor=admin, default_label=Label.INTERNAL, groups=[readers]
    )
    return {"admin": admin, "reader": reader, "collection": collection}


def _upload(collection: Collection, admin: User, name: str, text: str) -> Document:
    doc, _ = services.document_create(
        collection=collection, upload=ContentFile(text.encode(), name=name), user=admin
    )
    return doc


def _ingest(world: dict) -> list[Document]:
    docs = [_upload(world["collection"], world["admin"], n, t) for n, t in DOCS.items()]
    wait_for_documents([d.pk for d in docs])
    return docs


def _ids(version: EmbedderVersion, docs: list[Document]) -> set[str]:
    ids = set()
    for d in Document.objects.filter(pk__in=[d.pk for d in docs]):
        ids |= {point_id(d.pk, i, version) for i in range(d.chunk_count)}
    return ids


def _wait_state(version: EmbedderVersion, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while EmbedderVersion.objects.get(pk=version.pk).state != state:
        assert time.monotonic() < deadline, f"{version.name} did not become {state}"
        time.sleep(0.2)


def test_reindex_builds_beside_the_active_version_and_the_switch_is_atomic_and_audited(
    world, other_model
):
    reader, store = world["reader"], get_store()
    docs = _ingest(world)
    base = versions.active_version()
    assert base.is_base and base.name == "minilm"
    noisy = versions.register_version(
        name="noisy", path=other_model, base=base, trained_on={"passages": 3, "pairs": 0}
    )
    question = "How many days of paid leave do employees get?"
    # The two models disagree on the question's vector: mixing them would be visible.
    a, b = embed_query(question), embed_query(question, model_dir=other_model)
    assert sum(x * y for x, y in zip(a, b, strict=True)) < 0.995

    versions.start_reindex(noisy, world["admin"])
    late = _upload(world["collection"], world["admin"], "parking.md", LATE)  # during the build
    # The late document's chunks may show up before its row says how many it has.
    base_ids = _ids(base, docs) | {point_id(late.pk, i, base) for i in range(20)}
    while EmbedderVersion.objects.get(pk=noisy.pk).state == EmbedderVersion.State.BUILDING:
        hits = retrieve(user=reader, question=question, k=10).hits
        assert hits and {h.chunk_id for h in hits} <= base_ids
        time.sleep(0.05)
    _wait_state(noisy, EmbedderVersion.State.READY)
    wait_for_documents([late.pk])
    everything = [*docs, late]
    # Every indexed document has its points in both versions, under their own ids.
    for version in (base, noisy):
        found = {p.id for p in store.scroll(Filter.of(embedder=[version.pk]), limit=1000)[0]}
        assert found == _ids(version, everything)
    # Ready is not active: queries still come from the packaged model.
    before = retrieve(user=reader, question=question, k=10)
    assert {h.chunk_id for h in before.hits} <= _ids(base, everything)

    versions.activate(noisy, world["admin"])
    assert EmbedderVersion.objects.get(pk=base.pk).state == EmbedderVersion.State.RETIRED
    assert versions.active_version().pk == noisy.pk
    after = retrieve(user=reader, question=question, k=10)
    assert {h.chunk_id for h in after.hits} <= _ids(noisy, everything)
    assert after.hits[0].title == "leave"
    # The document uploaded during the build is found through the new version.
    parking = retrieve(user=reader, question="Where do visitors get a parking permit?", k=3)
    assert parking.hits[0].document_id == late.pk
    assert parking.hits[0].chunk_id in _ids(noisy, [late])

    actions = list(
        AuditEvent.objects.filter(action__startswith="embedder.")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["embedder.reindex_started", "embedder.ready", "embedder.activated"]
    activated = AuditEvent.objects.get(action="embedder.activated")
    assert activated.actor_id == world["admin"].pk
    assert activated.details["previous"] == "minilm"

    # The active version cannot be dropped; the retired one's points are kept until it is.
    with pytest.raises(versions.VersionError, match="active version"):
        versions.drop(noisy, world["admin"])
    assert versions.point_count(base) == len(_ids(base, everything))
    versions.drop(base, world["admin"])
    assert store.count(Filter.of(embedder=[base.pk])) == 0
    assert not EmbedderVersion.objects.filter(pk=base.pk).exists()
    assert retrieve(user=reader, question=question, k=3).hits[0].title == "leave"
    assert AuditEvent.objects.filter(action="embedder.dropped").count() == 1


def test_deletes_and_relabels_reach_every_version_and_a_retired_one_cannot_come_back(
    world, other_model
):
    store = get_store()
    docs = _ingest(world)
    base = versions.active_version()
    noisy = versions.register_version(name="noisy2", path=other_model, base=base, trained_on={})
    versions.start_reindex(noisy)
    _wait_state(noisy, EmbedderVersion.State.READY)

    services.document_set_label(document=docs[0], label=Label.CONFIDENTIAL, actor=world["admin"])
    deadline = time.monotonic() + 30
    while True:
        labels = {
            p.payload["label"]
            for p in store.scroll(Filter.of(document_id=[docs[0].pk]), limit=100)[0]
        }
        if labels == {Label.CONFIDENTIAL}:
            break
        assert time.monotonic() < deadline, f"labels on the points: {labels}"
        time.sleep(0.2)
    assert store.count(Filter.of(document_id=[docs[0].pk], embedder=[noisy.pk])) > 0

    services.document_delete(document=docs[1], actor=world["admin"])
    assert store.count(Filter.of(document_id=[docs[1].pk])) == 0

    versions.activate(noisy, None)
    with pytest.raises(versions.VersionError, match="not ready"):
        versions.activate(base, None)  # retired: it was not kept current
    with pytest.raises(versions.VersionError, match="exists already"):
        versions.register_version(name="noisy2", path=other_model, base=base, trained_on={})
    with pytest.raises(versions.VersionError, match="no sentence-transformers model"):
        versions.register_version(
            name="empty", path=str(Path(other_model).parent / "x"), base=base, trained_on={}
        )


def test_points_from_before_versions_are_backfilled_and_found_again(world):
    store = get_store()
    docs = _ingest(world)
    base = versions.active_version()
    stored = store.scroll(Filter.of(collection_id=[world["collection"].pk]), limit=1000)[0]
    question = "How do I connect to the VPN?"
    assert retrieve(user=world["reader"], question=question, k=3).hits
    # What an install from before versions holds: the same points without the field.
    old = []
    for p in stored:
        payload = {k: v for k, v in p.payload.items() if k != "embedder"}
        vector = embed_query(f"{p.payload['title']}\n{p.payload['text']}")
        old.append(
            Point(id=p.id, dense=vector, sparse=sparse.encode_documents(["x"])[0], payload=payload)
        )
    store.upsert(old)
    assert store.count(Filter.of(embedder=[base.pk])) == 0
    assert not retrieve(user=world["reader"], question=question, k=3).hits  # never guessed
    assert embedder_backfill() == len(stored)
    assert store.count(Filter.of(embedder=[base.pk])) == len(stored)
    assert retrieve(user=world["reader"], question=question, k=3).hits[0].document_id == docs[0].pk
    assert embedder_backfill() == 0


def test_the_admin_page_lists_versions_and_its_buttons_are_admin_only_posts(
    world, other_model, client
):
    docs = _ingest(world)
    base = versions.active_version()
    noisy = versions.register_version(name="noisy3", path=other_model, base=base, trained_on={})
    client.force_login(world["reader"])
    assert client.get(reverse("knowledge:embedders")).status_code == 403
    assert client.post(reverse("knowledge:embedder_drop", args=[noisy.pk])).status_code == 403
    assert EmbedderVersion.objects.filter(pk=noisy.pk).exists()

    client.force_login(world["admin"])
    page = client.get(reverse("knowledge:embedders"))
    rows = {r["version"].name: r["points"] for r in page.context["rows"]}
    assert rows == {"minilm": len(_ids(base, docs)), "noisy3": 0}
    # The search index's own state, under the versions (README "Capacity").
    assert page.context["index"]["points"] >= len(_ids(base, docs))
    assert "Search index" in page.content.decode() and "Graphs" in page.content.decode()
    # Registered is not built: activating it would leave every search empty.
    client.post(reverse("knowledge:embedder_activate", args=[noisy.pk]))
    assert versions.active_version().pk == base.pk
    assert client.get(reverse("knowledge:embedder_activate", args=[noisy.pk])).status_code == 405

    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(world["admin"])
    assert csrf.post(reverse("knowledge:embedder_reindex", args=[noisy.pk])).status_code == 403
    assert EmbedderVersion.objects.get(pk=noisy.pk).state == EmbedderVersion.State.READY

    client.post(reverse("knowledge:embedder_reindex", args=[noisy.pk]))
    _wait_state(noisy, EmbedderVersion.State.READY)
    client.post(reverse("knowledge:embedder_activate", args=[noisy.pk]))
    assert versions.active_version().pk == noisy.pk
    event = AuditEvent.objects.get(action="embedder.activated")
    assert event.actor_id == world["admin"].pk
    response = client.post(reverse("knowledge:embedder_drop", args=[noisy.pk]), follow=True)
    assert "active version" in response.content.decode()
    assert EmbedderVersion.objects.filter(pk=noisy.pk).exists()
