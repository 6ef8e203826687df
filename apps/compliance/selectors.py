"""Reading the audit trail for the console: filters, keyset pages, export batches.

Every list is ordered by id (= chain order = time order) and paged by id ranges, never
by OFFSET, so page 20,000 of a million events costs what page 1 costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from apps.audit.actions import KNOWN_ACTIONS
from apps.audit.chain import format_time
from apps.audit.models import AuditEvent
from apps.audit.personal import reveal_events

PAGE_SIZE = 50
EXPORT_BATCH = 2000


@dataclass(frozen=True)
class EventFilter:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    username: str = ""
    action: str = ""  # exact, or a namespace like "document.*"
    label: str = ""
    left_premises: bool = False
    conversation_id: str = ""

    def is_empty(self) -> bool:
        return self == EventFilter()

    def as_details(self) -> dict[str, Any]:
        """The filter as recorded in an audit.exported event (only what was set)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, datetime):
                value = format_time(value)
            if value not in ("", None, False):
                out[key] = value
        return out


def _actions_for(action: str) -> list[str]:
    if action.endswith(".*"):
        prefix = action[:-1]
        return [known for known in KNOWN_ACTIONS if known.startswith(prefix)] or [action]
    return [action]


def _first_id(events: QuerySet[AuditEvent], *order: str) -> int | None:
    """The id of the first of `events` in `order` (one index probe for the console's)."""
    return events.order_by(*order).values_list("id", flat=True).first()


def _id_bounds(f: EventFilter) -> tuple[int | None, int | None] | None:
    """A time range as an id range; None when no event can match.

    Valid because audit_record never lets time go backwards along the chain (and the
    insert trigger refuses an event that would), so ids and times sort alike.
    """
    lo = hi = None
    if f.start is not None:
        lo = _first_id(AuditEvent.objects.filter(time__gte=f.start), "time", "id")
        if lo is None:
            return None
    if f.end is not None:
        hi = _first_id(AuditEvent.objects.filter(time__lt=f.end), "-time", "-id")
        if hi is None:
            return None
    if lo is not None and hi is not None and lo > hi:
        return None
    return lo, hi


def events_matching(f: EventFilter) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if f.start is not None or f.end is not None:
        bounds = _id_bounds(f)
        if bounds is None:
            return qs.none()
        lo, hi = bounds
        if lo is not None:
            qs = qs.filter(id__gte=lo)
        if hi is not None:
            qs = qs.filter(id__lte=hi)
    if f.action:
        actions = _actions_for(f.action)
        qs = qs.filter(action=actions[0]) if len(actions) == 1 else qs.filter(action__in=actions)
    if f.username:
        # Usernames are sealed (apps.audit.personal): the account's id finds its events;
        # the plain name finds those written before sealing.
        users = get_user_model()._default_manager.filter(
            **{get_user_model().USERNAME_FIELD: f.username}
        )
        pks = list(users.values_list("pk", flat=True))
        qs = qs.filter(Q(actor_username=f.username) | Q(actor_pk__in=pks))
    if f.label:
        qs = qs.filter(labels__contains=[f.label])
    if f.left_premises:
        qs = qs.filter(left_premises=True)
    if f.conversation_id:
        qs = qs.filter(conversation_id=f.conversation_id)
    return qs


@dataclass
class EventPage:
    events: list[AuditEvent]
    # Cursors for the neighbouring pages (an event id), None where there is none.
    older: int | None
    newer: int | None


def event_page(
    *,
    filters: EventFilter,
    before: int | None = None,
    after: int | None = None,
    size: int | None = None,
) -> EventPage:
    """Newest first. `before=X`: the page of events older than X; `after=X`: newer than X."""
    size = size or PAGE_SIZE
    qs = events_matching(filters).defer("details_json")
    if after is not None:
        rows = list(qs.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        events = reveal_events(reversed(rows[:size]))
        return EventPage(
            events=events,
            older=events[-1].id if events else after + 1,
            newer=events[0].id if more_newer else None,
        )
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: size + 1])
    events = reveal_events(rows[:size])
    return EventPage(
        events=events,
        older=events[-1].id if len(rows) > size else None,
        newer=(events[0].id if events else before) if before is not None else None,
    )


def event_get(*, event_id: int) -> AuditEvent | None:
    """One event with its personal fields opened for display (apps.audit.personal)."""
    event = AuditEvent.objects.filter(id=event_id).first()
    return reveal_events([event])[0] if event is not None else None


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def events_for_export(
    *, filters: EventFilter, upto_id: int, batch_size: int = EXPORT_BATCH
) -> Iterator[AuditEvent]:
    """Matching events in chain order, fetched in id ranges: memory stays at one batch.

    Keyset batches rather than one server-side cursor: in autocommit a holdable cursor
    would make PostgreSQL materialise the whole result first, and a streamed response
    should not pin a transaction open for minutes either.
    """
    qs = events_matching(filters).filter(id__lte=upto_id).order_by("id")
    last = 0
    while True:
        batch = list(qs.filter(id__gt=last)[:batch_size])
        if not batch:
            return
        yield from batch
        last = batch[-1].id
