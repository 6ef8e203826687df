"""Embedder versions and their blue/green re-index (README "Embedder versions and
re-indexing").

    register_version ─→ ready ─┐                 (or building, with start_reindex)
    start_reindex ─→ building ─→ ready ─→ activate ─→ active ─→ (next activate) retired
                                                                 drop ─→ row and points gone

Writes for documents go to every *current* version (active, building, ready), so a ready
version stays complete until it is switched to; a retired one is not kept current and
must be re-indexed before it can be active again. The re-index itself (reading each
document's active points back and re-embedding them) is apps/knowledge/reindex.py, run
by a worker (workers/embedder.py); this module sends it by name, like
apps/knowledge/dispatch.py does for ingestion.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.celery import app
from apps.retrieval import store as vector_store
from apps.retrieval.embeddings import dimension
from apps.retrieval.models import BASE_NAME, EmbedderVersion
from apps.retrieval.store.protocol import Filter

logger = logging.getLogger(__name__)

REINDEX_TASK = "workers.embedder.reindex_task"
CURRENT = (
    EmbedderVersion.State.ACTIVE,
    EmbedderVersion.State.BUILDING,
    EmbedderVersion.State.READY,
)


class VersionError(ValueError):
    """An embedder version action that cannot be done; the message says why and what to do."""


def model_dir(name: str) -> Path:
    """Where `adapt_embedder` saves the model of version `name` (EMBEDDERS_DIR)."""
    return Path(settings.EMBEDDERS_DIR) / name


def active_version() -> EmbedderVersion:
    """The version that answers queries. A database without one (a fresh test database
    that was flushed) gets the packaged MiniLM back as the active version."""
    found = EmbedderVersion.objects.filter(state=EmbedderVersion.State.ACTIVE).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            version, _ = EmbedderVersion.objects.get_or_create(
                name=BASE_NAME, defaults={"path": "", "state": EmbedderVersion.State.ACTIVE}
            )
            if version.state != EmbedderVersion.State.ACTIVE:
                version.state = EmbedderVersion.State.ACTIVE
                version.activated_at = timezone.now()
                version.save(update_fields=["state", "activated_at"])
    except IntegrityError:  # another process made one active at the same moment
        pass
    return EmbedderVersion.objects.get(state=EmbedderVersion.State.ACTIVE)


def current_versions() -> list[EmbedderVersion]:
    """Every version whose points ingestion keeps up to date, the active one first."""
    active = active_version()
    others = EmbedderVersion.objects.filter(state__in=CURRENT).exclude(pk=active.pk)
    return [active, *others]


def _user(user: AbstractBaseUser | None) -> Any:
    return user if user is not None and user.is_authenticated else None


def register_version(
    *,
    name: str,
    path: str,
    base: EmbedderVersion | None,
    trained_on: dict[str, Any],
    user: AbstractBaseUser | None = None,
) -> EmbedderVersion:
    """A new version for the model in `path`, state "ready" until `start_reindex`.

    Refuses a name in use and a directory that holds no model; a model whose vectors do
    not fit the store (another dimension) is refused when its re-index starts.
    """
    if EmbedderVersion.objects.filter(name=name).exists():
        raise VersionError(f"an embedder version named {name!r} exists already")
    if path and not (Path(path) / "config.json").is_file():
        raise VersionError(f"{path} holds no sentence-transformers model (no config.json)")
    return EmbedderVersion.objects.create(
        name=name,
        path=path,
        base=base,
        trained_on=trained_on,
        state=EmbedderVersion.State.READY,
        created_by=_user(user),
    )


def get_version(name: str) -> EmbedderVersion:
    found = EmbedderVersion.objects.filter(name=name).first()
    if found is None:
        known = ", ".join(EmbedderVersion.objects.values_list("name", flat=True))
        raise VersionError(f"no embedder version named {name!r} (there are: {known})")
    return found


def start_reindex(version: EmbedderVersion, user: AbstractBaseUser | None = None) -> None:
    """Mark the version building and send the re-index to a worker; the active version
    keeps serving meanwhile. Idempotent on a version already building."""
    if version.state == EmbedderVersion.State.ACTIVE:
        raise VersionError(f"{version.name} is the active version; nothing to re-index")
    active = active_version()
    if dimension(version.model_path) != dimension(active.model_path):
        raise VersionError(
            f"{version.name}'s model makes {dimension(version.model_path)}-dimensional vectors "
            f"and the store holds {dimension(active.model_path)}: train from the active model"
        )
    with transaction.atomic():
        locked = EmbedderVersion.objects.select_for_update().get(pk=version.pk)
        locked.state = EmbedderVersion.State.BUILDING
        locked.progress = {"started_at": timezone.now().isoformat(), "documents": 0}
        locked.save(update_fields=["state", "progress"])
        audit_record(
            actor=_user(user),
            action="embedder.reindex_started",
            target=locked,
            details={"version": locked.name, "from": active.name},
        )
        pk = locked.pk
        transaction.on_commit(lambda: app.send_task(REINDEX_TASK, args=[pk]))
    version.refresh_from_db()


def mark_ready(version_id: int, *, documents: int, points: int) -> None:
    """The re-index wrote every indexed document's points (called by the worker)."""
    with transaction.atomic():
        locked = EmbedderVersion.objects.select_for_update().filter(pk=version_id).first()
        if locked is None or locked.state != EmbedderVersion.State.BUILDING:
            return  # dropped meanwhile
        locked.state = EmbedderVersion.State.READY
        locked.progress = {
            **locked.progress,
            "documents": documents,
            "points": points,
            "finished_at": timezone.now().isoformat(),
        }
        locked.save(update_fields=["state", "progress"])
        audit_record(
            actor=None,
            action="embedder.ready",
            target=locked,
            details={"version": locked.name, "documents": documents, "points": points},
        )


def activate(version: EmbedderVersion, user: AbstractBaseUser | None) -> EmbedderVersion:
    """Switch queries to `version` in one transaction; the previous one is retired."""
    with transaction.atomic():
        rows = {
            v.pk: v
            for v in EmbedderVersion.objects.select_for_update().filter(
                state__in=[EmbedderVersion.State.ACTIVE, EmbedderVersion.State.READY]
            )
        }
        locked = rows.get(version.pk)
        if locked is None or locked.state != EmbedderVersion.State.READY:
            state = EmbedderVersion.objects.filter(pk=version.pk).values_list("state", flat=True)
            raise VersionError(
                f"{version.name} is {state.first() or 'gone'}, not ready: only a ready version "
                "can be activated (re-index it first)"
            )
        if not locked.built:
            raise VersionError(
                f"{locked.name} has no points yet: re-index it (`manage.py embedder reindex "
                f"{locked.name}`) and activate it once it is ready"
            )
        old = next((v for v in rows.values() if v.state == EmbedderVersion.State.ACTIVE), None)
        if old is not None:
            old.state = EmbedderVersion.State.RETIRED
            old.save(update_fields=["state"])  # first, so the one-active constraint holds
        locked.state = EmbedderVersion.State.ACTIVE
        locked.activated_at = timezone.now()
        locked.save(update_fields=["state", "activated_at"])
        audit_record(
            actor=_user(user),
            action="embedder.activated",
            target=locked,
            details={"version": locked.name, "previous": old.name if old else None},
        )
    return locked


def drop(version: EmbedderVersion, user: AbstractBaseUser | None) -> None:
    """Delete a version that is not active: its points first, then its row."""
    with transaction.atomic():
        locked = EmbedderVersion.objects.select_for_update().filter(pk=version.pk).first()
        if locked is None:
            return
        if locked.state == EmbedderVersion.State.ACTIVE:
            raise VersionError(
                f"{locked.name} is the active version and answers every query: activate "
                "another version first, then drop this one"
            )
        # The points go before the row: a store that is down leaves the version listed.
        vector_store.get_store().delete(Filter.of(embedder=[locked.pk]))
        audit_record(
            actor=_user(user),
            action="embedder.dropped",
            target=locked,
            details={"version": locked.name, "state": locked.state, "path": locked.path},
        )
        locked.delete()


def point_count(version: EmbedderVersion) -> int:
    return vector_store.get_store().count(Filter.of(embedder=[version.pk]))
