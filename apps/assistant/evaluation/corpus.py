"""The corpus folder of `evaluate_answers` and its throw-away home.

Which files: when the folder has a `manifest.json` (a list of {"file", "title"?,
"label"?}, as apps/knowledge/demo has), exactly the files it lists, with their titles and
labels; otherwise every file under the folder (hidden ones aside), each titled as an
upload would be. A file the pipeline cannot read fails like an upload would, and is
reported. File names must be unique: the question file's `source` names them.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile

from apps.assistant.evaluation.qa import EvaluationError
from apps.core.labels import Label
from apps.core.roles import EMPLOYEE
from apps.knowledge.ingestion import document_ingest
from apps.knowledge.models import Collection, Document
from apps.search.evaluation.environment import Environment

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    title: str
    label: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def _from_manifest(root: Path) -> list[CorpusFile]:
    try:
        entries = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise EvaluationError(f"cannot read {root / MANIFEST}: {err}") from None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("file"), str) for e in entries
    ):
        raise EvaluationError(f"{root / MANIFEST}: expected a list of objects with a 'file'")
    files = []
    for entry in entries:
        path = root / entry["file"]
        if not path.is_file():
            raise EvaluationError(f"{root / MANIFEST} lists {entry['file']}, which is missing")
        label = entry.get("label")
        if label is not None and label not in Label.values:
            raise EvaluationError(f"{root / MANIFEST}: {entry['file']} has unknown label {label!r}")
        files.append(CorpusFile(path, str(entry.get("title") or _title(path)), label))
    return files


def _title(path: Path) -> str:
    return path.stem.replace("_", " ").strip() or path.name


def corpus_files(root: Path) -> list[CorpusFile]:
    if not root.is_dir():
        raise EvaluationError(f"{root} is not a folder")
    if (root / MANIFEST).is_file():
        files = _from_manifest(root)
    else:
        files = [
            CorpusFile(p, _title(p))
            for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        ]
    if not files:
        raise EvaluationError(f"{root} holds no files")
    names = [f.name for f in files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise EvaluationError(f"file names must be unique in {root}: {', '.join(twice)}")
    return files


class CorpusEnvironment(Environment):
    """One collection of the corpus files, read by one employee; `doc_ids` maps each
    Document id to its file name."""

    def ingest_files(self, files: list[CorpusFile], *, out: Callable[[str], object]) -> None:
        """Every file through the real pipeline (parse, chunk, embed, upsert), in this
        process: no worker, nothing sent to a broker."""
        main = self.collection("main")
        started = time.perf_counter()
        failed = []
        for file in files:
            doc = self._file_document(main, file)
            document_ingest(document_id=doc.pk, worker="evaluate_answers")
            doc.refresh_from_db(fields=["status", "failure_reason"])
            if doc.status != Document.Status.INDEXED:
                failed.append((file.name, doc.failure_reason))
        chunks = sum(
            Document.objects.filter(pk__in=self.doc_ids).values_list("chunk_count", flat=True)
        )
        out(
            f"ingested {len(files)} files ({chunks} chunks) in "
            f"{time.perf_counter() - started:.0f} s, {len(failed)} failed"
        )
        for name, reason in failed:
            out(f"  failed {name}: {reason}")

    def _file_document(self, collection: Collection, file: CorpusFile) -> Document:
        data = file.path.read_bytes()
        doc = Document(
            collection=collection,
            title=file.title[:500],
            original_name=file.name[:500],
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            label=file.label or collection.default_label,
        )
        doc.file.save(f"{uuid.uuid4().hex}{file.path.suffix}", ContentFile(data), save=False)
        doc.save()
        self.doc_ids[doc.pk] = file.name
        return doc

    def employee(self) -> User:
        """The one reader of the corpus collection, in the employee role as well."""
        user = self.user(hidden=True)
        role = Group.objects.filter(name=EMPLOYEE).first()
        if role is not None:
            user.groups.add(role)
        return user
