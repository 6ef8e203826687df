"""Sync a Source: its folder's files in, as documents and new versions; gone files out.

    lock the source → walk the folder → per file: unchanged | added | updated | failed
                                      → documents whose file is gone: removed → report

A file is compared with its document's newest version by SHA-256: the same content is
left alone (never re-embedded), other content becomes the next version
(apps/knowledge/versions.py), which swaps in once it is indexed. A file that cannot be
taken (too large, a link, unreadable, the same content as another document) is listed in
the report with its reason and changes nothing else. Two syncs of one source never run
together: the second waits on a PostgreSQL advisory lock, then finds the work done.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import connection
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.sizes import human_size
from apps.knowledge import services
from apps.knowledge.models import Document, Source, SyncRun
from apps.retrieval.store.protocol import StoreError

logger = logging.getLogger(__name__)

# The advisory lock's first key: the second is the source's id.
LOCK_NAMESPACE = 16_016

# progress(done, total, relative path) after each file.
Progress = Callable[[int, int, str], None]


class SourceInvalid(ValueError):
    """A source's folder cannot be synced; the message says what to fix."""


def check_folder(path: str) -> Path:
    """The folder, resolved, if it is an existing directory inside one of SOURCE_ROOTS."""
    folder = Path(path).expanduser()
    if not folder.is_absolute():
        raise SourceInvalid(f"{path} is not an absolute path; give the folder as /mnt/share/…")
    resolved = folder.resolve()
    roots = [Path(r).resolve() for r in settings.SOURCE_ROOTS]
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise SourceInvalid(
            f"{path} is not inside an allowed folder ({', '.join(map(str, roots))}); "
            "mount the share there or add its parent to SOURCE_ROOTS."
        )
    if not resolved.is_dir():
        raise SourceInvalid(f"{path} is not a directory (is the share mounted?).")
    return resolved


def label_for(source: Source, relative: str) -> str:
    """The rule of the longest folder that contains the file, else the source's default."""
    best, label = -1, source.default_label or source.collection.default_label
    for rule in source.label_rules or []:
        folder = str(rule.get("folder", "")).strip("/")
        if folder and (relative == folder or relative.startswith(folder + "/")):
            if len(folder) > best:
                best, label = len(folder), str(rule.get("label"))
    return label


@dataclass(frozen=True)
class FolderFile:
    relative: str  # posix path inside the folder: the document's original_name
    path: Path


def folder_files(folder: Path) -> tuple[list[FolderFile], list[dict[str, str]]]:
    """Regular files below the folder, sorted; hidden ones skipped; links refused (a link
    could lead out of the share)."""
    found: list[FolderFile] = []
    refused: list[dict[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                refused.append(
                    {"path": relative, "reason": "A symbolic link; links are not followed."}
                )
            elif path.is_file():
                found.append(FolderFile(relative=relative, path=path))
    for d in _linked_dirs(folder):
        refused.append({"path": d, "reason": "A symbolic link; links are not followed."})
    return found, refused


def _linked_dirs(folder: Path) -> Iterator[str]:
    for dirpath, dirnames, _ in os.walk(folder, followlinks=False):
        for d in dirnames:
            if not d.startswith(".") and (Path(dirpath) / d).is_symlink():
                yield (Path(dirpath) / d).relative_to(folder).as_posix()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def source_lock(source_id: int) -> Iterator[None]:
    """One sync per source at a time, across processes: a second one waits here."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, source_id])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, source_id])


def _newest_by_name(source: Source) -> dict[str, Document]:
    """Each synced name's newest current version (an indexed one, or one on its way)."""
    newest: dict[str, Document] = {}
    for doc in Document.objects.filter(source=source, superseded_at__isnull=True).order_by(
        "version", "pk"
    ):
        newest[doc.original_name] = doc
    return newest


def source_sync(
    *,
    source: Source,
    trigger: str,
    actor: AbstractBaseUser | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Sync one source now and return its report (also stored and audited)."""
    with source_lock(source.pk):
        source = Source.objects.select_related("collection").get(pk=source.pk)
        run = SyncRun.objects.create(
            source=source,
            trigger=trigger,
            started_by=actor if actor is not None and actor.is_authenticated else None,  # type: ignore[misc]  # AUTH_USER_MODEL is auth.User
        )
        try:
            _sync_files(source, run, actor=actor, progress=progress)
            run.status = SyncRun.Status.DONE
        except SourceInvalid as err:
            run.status, run.error = SyncRun.Status.FAILED, str(err)
        run.finished_at = timezone.now()
        run.save()
        Source.objects.filter(pk=source.pk).update(last_synced_at=run.finished_at)
        audit_record(
            actor=actor,
            action="source.synced",
            target=source,
            details={
                "source_id": source.pk,
                "collection_id": source.collection_id,
                "run_id": run.pk,
                "trigger": trigger,
                "status": run.status,
                "files_seen": run.files_seen,
                "added": run.added,
                "updated": run.updated,
                "removed": run.removed,
                "unchanged": run.unchanged,
                "failed": len(run.failures),
                "error": run.error,
            },
        )
    return run


def _sync_files(
    source: Source, run: SyncRun, *, actor: AbstractBaseUser | None, progress: Progress | None
) -> None:
    folder = check_folder(source.path)
    files, refused = folder_files(folder)
    run.failures = list(refused)
    run.files_seen = len(files)
    newest = _newest_by_name(source)
    for done, item in enumerate(files, start=1):
        _sync_one(source, run, item, newest.pop(item.relative, None), actor=actor)
        if progress is not None:
            progress(done, len(files), item.relative)
    # What is left was not found in the folder: its file is gone.
    refused_names = {f["path"] for f in refused}
    for name, doc in sorted(newest.items()):
        if name in refused_names:
            continue  # still there, as a link: keep the document, the report says why
        try:
            services.document_delete_versions(document=doc, actor=actor)
            run.removed += 1
        except StoreError as err:
            run.failures.append({"path": name, "reason": f"Not removed: {err}"})


def _sync_one(
    source: Source,
    run: SyncRun,
    item: FolderFile,
    current: Document | None,
    *,
    actor: AbstractBaseUser | None,
) -> None:
    try:
        size = item.path.stat().st_size
        if size > settings.UPLOAD_MAX_BYTES:
            raise services.UploadRejected(
                f"{human_size(size)}; the limit is {human_size(settings.UPLOAD_MAX_BYTES)}."
            )
        sha = _sha256(item.path)
        if current is not None and current.sha256 == sha:
            run.unchanged += 1
            return
        with item.path.open("rb") as handle:
            services.document_create(
                collection=source.collection,
                upload=File(handle, name=item.path.name),
                user=actor,
                # A new file gets its folder's label; a new version keeps the label of the
                # one it replaces (an admin may have changed it).
                label=None if current is not None else label_for(source, item.relative),
                name=item.relative,
                source=source,
            )
    except services.UploadRejected as err:
        run.failures.append({"path": item.relative, "reason": str(err)})
        return
    except OSError as err:
        run.failures.append(
            {"path": item.relative, "reason": f"Could not be read: {err.strerror or err}."}
        )
        return
    if current is None:
        run.added += 1
    else:
        run.updated += 1


def sources_due() -> list[Source]:
    """Enabled sources whose interval has passed since their last sync."""
    now = timezone.now()
    return [
        s
        for s in Source.objects.filter(enabled=True).select_related("collection")
        if s.last_synced_at is None
        or (now - s.last_synced_at).total_seconds() >= s.interval_minutes * 60
    ]
