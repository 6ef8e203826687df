"""Helpers shared by the failure tests: documents that take a while, points per document."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.files import File

from apps.core.labels import Label
from apps.core.roles import EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import ingestion, points, services
from apps.knowledge.models import Collection, Document
from apps.retrieval.store import get_store
from apps.retrieval.store.protocol import Filter

TOPICS = ["invoices", "robots", "warehouses", "batteries", "travel", "security", "payroll"]


def long_text(paragraphs: int, *, seed: str) -> str:
    """A plain-text document of `paragraphs` paragraphs; `seed` makes its SHA-256 unique."""
    return f"{seed}\n\n" + "\n\n".join(
        f"Section {i} of the {seed} manual explains how the {TOPICS[i % len(TOPICS)]} process "
        f"works. Step {i}.1 checks the {TOPICS[(i + 1) % len(TOPICS)]} ledger against the plan. "
        f"Step {i}.2 records every exception with its owner, its date and its amount. "
        "Reviewers sign off once all open items are closed and the evidence is filed."
        for i in range(paragraphs)
    )


def write_long(directory: Path, name: str, paragraphs: int) -> tuple[Path, int]:
    """Write a long text file; return it with the number of chunks it must end with."""
    path = directory / name
    path.write_text(long_text(paragraphs, seed=path.stem))
    return path, len(ingestion.document_chunks(path=path)[1])


def admin_user(name: str = "fail-admin") -> User:
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    user.groups.add(Group.objects.get(name=KNOWLEDGE_ADMIN))
    return user


def employee(name: str, *groups: Group) -> User:
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    user.groups.add(Group.objects.get(name=EMPLOYEE), *groups)
    return user


def make_collection(
    name: str, *, groups: list[Group], label: str = Label.INTERNAL, actor: User | None = None
) -> Collection:
    return services.collection_create(name=name, actor=actor, default_label=label, groups=groups)


def upload(collection: Collection, path: Path, user: User | None = None) -> Document:
    with path.open("rb") as fh:
        doc, _ = services.document_create(
            collection=collection, upload=File(fh, name=path.name), user=user
        )
    return doc


def point_ids(document_id: int) -> list[str]:
    """Every point id the store holds for the document (duplicates kept, if any)."""
    ids, offset = [], None
    while True:
        page, offset = get_store().scroll(
            Filter.of(document_id=[document_id]), limit=500, offset=offset
        )
        ids.extend(str(p.id) for p in page)
        if offset is None:
            return ids


def chunk_indexes(document_id: int) -> list[int]:
    out, offset = [], None
    while True:
        page, offset = get_store().scroll(
            Filter.of(document_id=[document_id]), limit=500, offset=offset
        )
        out.extend(int(p.payload["chunk_index"]) for p in page)
        if offset is None:
            return sorted(out)


def assert_indexed_exactly(doc: Document, expected_chunks: int) -> None:
    """Indexed, the chunk count the file yields, one point per chunk and no other."""
    assert doc.status == Document.Status.INDEXED, (doc.pk, doc.status, doc.failure_reason)
    assert doc.chunk_count == expected_chunks
    ids = point_ids(doc.pk)
    assert len(ids) == len(set(ids)) == expected_chunks
    assert set(ids) == {points.point_id(doc.pk, i) for i in range(expected_chunks)}
    assert chunk_indexes(doc.pk) == list(range(expected_chunks))
    assert get_store().count(Filter.of(document_id=[doc.pk])) == expected_chunks


def wait_until(predicate, *, timeout: float, what: str, every: float = 0.02):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def sse_events(chunks) -> list[tuple[str, dict]]:  # noqa: ANN001
    body = b"".join(chunks).decode()
    return parse_sse(body)


def parse_sse(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events
