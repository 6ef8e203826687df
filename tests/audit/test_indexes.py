"""Every console filter is answered from an index, in id order, without a sort.

On a test-sized table PostgreSQL would rightly pick a sequential scan, so the planner is
told to avoid one (enable_seqscan/enable_sort off only make them very expensive: a plan
still shows them when no index can serve the query). bench/audit.py times the same
queries on a million events.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.compliance.selectors import EventFilter, events_matching

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(make_user):
    bob = make_user(username="bob")
    for n in range(20):
        audit_record(
            actor=bob if n % 2 else None,
            action="chat.retrieval" if n % 3 else "llm.call",
            details={
                "conversation_id": f"c{n % 4}",
                "chunks": [{"id": f"{n}-0", "label": ["public", "confidential"][n % 2]}],
                "where": "external" if n % 5 == 0 else "local",
            },
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    return AuditEvent.objects.order_by("id")


def plan(f: EventFilter, *, before: int | None = None) -> str:
    qs = events_matching(f).defer("details_json")
    if before is not None:
        qs = qs.filter(id__lt=before)
    return qs.order_by("-id")[:51].explain()


def now_ish(trail) -> EventFilter:
    first, last = trail.first().time, trail.last().time
    return EventFilter(start=first + timedelta(microseconds=1), end=last)


@pytest.mark.parametrize(
    ("name", "f"),
    [
        ("no filter", EventFilter()),
        ("action", EventFilter(action="llm.call")),
        ("user", EventFilter(username="bob")),
        ("label", EventFilter(label="confidential")),
        ("left the premises", EventFilter(left_premises=True)),
        ("conversation", EventFilter(conversation_id="c1")),
    ],
)
def test_each_filter_pages_newest_first_from_an_index(trail, name, f):
    for text in (plan(f), plan(f, before=10)):
        assert "Seq Scan" not in text, (name, text)
        assert "Sort" not in text, (name, text)
        assert "Index" in text, (name, text)


def test_a_time_range_becomes_an_id_range_found_through_the_time_index(trail):
    f = now_ish(trail)
    with CaptureQueriesContext(connection) as queries:
        text = plan(f)
    assert "Seq Scan" not in text and "Sort" not in text, text
    # The two bound look-ups (first event at/after start, last before end) use the index
    # on (time, id); the page itself is then an id range on the primary key.
    bounds = queries.captured_queries[:-1]
    assert len(bounds) == 2
    with connection.cursor() as cursor:
        for query in bounds:
            cursor.execute("EXPLAIN " + query["sql"])
            bound_plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "audit_time_id" in bound_plan, bound_plan
