"""The console's own writes: an export is itself an event of the trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from apps.audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser as User


def audit_export_begin(
    *, actor: User | None, fmt: str, filters: Mapping[str, Any], kind: str = "console"
) -> int:
    """Record that `actor` is exporting the events matching `filters`; return the last
    event id the export may include.

    The export is bounded by the chain as it stood just before its own event, so a
    streamed export is a consistent set however many events arrive while it runs.
    """
    event = audit_record(
        actor=actor,
        action="audit.exported",
        details={"kind": kind, "format": fmt, "filter": dict(filters)},
    )
    return event.id - 1
