"""The throw-away rows of one evaluation, and the corpus ingested into them.

One collection holds the corpus; a second, readable only by the "all" user, holds the
passages a split excludes, so they are left out inside the query as if never indexed.
Everything is named `eval-<random>-*` and removed by `cleanup()` whatever happened.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile

from apps.core.labels import Label
from apps.knowledge.ingestion import document_ingest
from apps.knowledge.models import Collection, Document
from apps.retrieval import store as vector_store
from apps.retrieval.store.protocol import Filter, StoreError
from apps.search.evaluation.dataset import Entry


class Environment:
    def __init__(self) -> None:
        self.tag = f"eval-{uuid.uuid4().hex[:8]}"
        self.collections: dict[str, Collection] = {}
        self.groups: dict[str, Group] = {}
        self.users: dict[bool, User] = {}
        self.doc_ids: dict[int, str] = {}  # Document id → corpus id

    def collection(self, part: str) -> Collection:
        group = Group.objects.create(name=f"{self.tag}-{part}")
        collection = Collection.objects.create(
            name=f"{self.tag}-{part}", description="evaluate_retrieval", default_label=Label.PUBLIC
        )
        collection.groups.set([group])
        self.groups[part] = group
        self.collections[part] = collection
        return collection

    def user(self, *, hidden: bool) -> User:
        """The reader of the main collection only (hidden=True) or of everything."""
        if hidden not in self.users:
            user = User.objects.create_user(f"{self.tag}-{'main' if hidden else 'all'}")
            parts = ["main"] if hidden else list(self.groups)
            user.groups.set([self.groups[p] for p in parts])
            self.users[hidden] = user
        return self.users[hidden]

    def ingest(
        self,
        corpus: list[Entry],
        excluded: set[str],
        *,
        out: Callable[[str], object],
        progress: Callable[[str], object],
    ) -> None:
        """One Document per corpus entry, through the real pipeline in this process."""
        main = self.collection("main")
        hidden = self.collection("excluded") if excluded else None
        started = time.perf_counter()
        failed = []
        for n, entry in enumerate(corpus, start=1):
            cid = str(entry["_id"])
            collection = hidden if (hidden is not None and cid in excluded) else main
            doc = self._document(collection, entry)
            document_ingest(document_id=doc.pk, worker="evaluate_retrieval")
            doc.refresh_from_db(fields=["status", "failure_reason"])
            if doc.status != Document.Status.INDEXED:
                failed.append((cid, doc.failure_reason))
            if n % 200 == 0:
                progress(f"  ingested {n}/{len(corpus)}")
        seconds = time.perf_counter() - started
        chunks = sum(
            Document.objects.filter(pk__in=self.doc_ids).values_list("chunk_count", flat=True)
        )
        out(
            f"ingested {len(corpus)} documents ({chunks} chunks, chunk size "
            f"{settings.CHUNK_SIZE_TOKENS}/{settings.CHUNK_OVERLAP_TOKENS} overlap) in "
            f"{seconds:.0f} s, {len(failed)} failed"
        )
        for cid, reason in failed[:10]:
            out(f"  failed {cid}: {reason}")

    def _document(self, collection: Collection, entry: Entry) -> Document:
        cid = str(entry["_id"])
        text = str(entry.get("text") or "")
        title = str(entry.get("title") or "").strip() or cid
        data = text.encode("utf-8")
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
        self.doc_ids[doc.pk] = cid
        return doc

    def cleanup(self) -> None:
        if self.collections:
            try:
                ids = [c.pk for c in self.collections.values()]
                vector_store.get_store().delete(Filter.of(collection_id=ids))
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
