"""How long the egress gate takes to decide, per question with 5 chunks in the prompt.

    .venv/bin/python bench/gate.py [--questions 300]

A throw-away database (`enclave_bench_gate`) with five public documents, a configured
provider, a user allowed to use it and a conversation with a few earlier turns. Each
question (a mix of clean ones and ones with an email, an IBAN or an API key, each made
unique with its number so no scan result is reused for it) is prepared and decided
exactly as the chat does it (`gate.prepare` + `gate.decide`: labels from the database,
taint, the PII/secret scan of every part of the messages — passages, titles and sections
too —, access, daily limits and the escalation rate in Redis). The passages repeat, as
they do in this bench since it began; the scanner keeps results per text, so a last line
times decisions whose five passages were never seen before. In the same run the bare PII
scan of the question and history is timed as a baseline. Goal: decision p95 <= 15 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from common import isolate, percentile, prepare_database  # noqa: E402 - bench/ is on sys.path

DB_NAME = "enclave_bench_gate"
QUESTIONS = [
    "When does Pathfinder launch?",
    "How many vacation days do new employees get, and can I carry them over?",
    "Please send the onboarding checklist to maria.lopez@example.com",
    "Refund the beta fee to IBAN DE89 3704 0044 0532 0130 00, what is the process?",
    "Why does my script fail with key sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a?",
    "Which laptop models are supported by IT for new starters in the Berlin office?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--fresh", type=int, default=50, help="decisions with new passages")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="enclave-bench-gate-"))
    isolate(db_url=prepare_database(DB_NAME), var=var, broker="redis://127.0.0.1:6379/11")

    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.files.base import ContentFile

    from apps.assistant.models import Conversation, Message
    from apps.knowledge import services as knowledge
    from apps.routing import gate, scan
    from apps.routing import services as routing
    from apps.routing.providers import external_provider

    settings.EXTERNAL_LLM_KIND = "openai-compatible"
    settings.EXTERNAL_LLM_NAME = "bench"
    settings.EXTERNAL_LLM_BASE_URL = "http://127.0.0.1:9/v1"  # never called here
    settings.EXTERNAL_LLM_MODEL = "bench-model"
    settings.ESCALATION_RATE_PER_MINUTE = 10**9  # counted in Redis as always, never reached
    stamp = int(time.time() * 1000)
    group = Group.objects.create(name=f"bench-gate-{stamp}")
    routing.policy_update(actor=None, escalation_enabled=True, non_sensitive_labels=["public"])
    routing.provider_access_set(
        actor=None, provider="bench", groups=[group], daily_token_budget=0,
        daily_cost_budget=Decimal("0"),
    )  # fmt: skip
    collection = knowledge.collection_create(name=f"bench-gate-{stamp}", actor=None)
    passages = []
    for n in range(1, 6):
        text = f"Passage {n} of the public launch notes. " * 25
        doc, _ = knowledge.document_create(
            collection=collection,
            upload=ContentFile(f"{stamp}-{n} {text}".encode(), name=f"p{n}.txt"),
            user=None,
            label="public",
        )
        passages.append(
            {"n": n, "chunk_id": f"c{n}", "document_id": doc.pk, "collection_id": collection.pk,
             "title": f"Launch notes {n}", "section": "Dates", "text": text, "page": None,
             "char_start": 0, "char_end": len(text), "label": "public", "score": 0.5}
        )  # fmt: skip
    user = User.objects.create_user(f"bench-gate-{stamp}")
    user.groups.add(group)
    conversation = Conversation.objects.create(user=user, touched_labels=["public"])
    history = []
    for q in QUESTIONS[:2]:
        asked = Message.objects.create(conversation=conversation, role="user", content=q)
        asked.retrieved = [
            {"chunk_id": p["chunk_id"], "document_id": p["document_id"]} for p in passages
        ]
        asked.save()
        history += [{"role": "user", "content": q}, {"role": "assistant", "content": "Sure."}]
    provider = external_provider()
    policy = gate.current_policy()

    def prepare(question: str) -> gate.ExternalRequest:
        return gate.prepare(
            question=question, passages=passages, history=history, policy=policy,
            provider=provider,
        )  # fmt: skip

    def decide(request: gate.ExternalRequest) -> gate.Decision:
        return gate.decide(
            user=user, conversation=conversation, request=request, provider=provider,
            policy=policy,
        )  # fmt: skip

    decide(prepare(QUESTIONS[0]))  # load the scanner and the tokenizer outside the timing
    prepared, decided, scanned, allowed = [], [], [], 0
    for i in range(args.questions):
        question = f"({i}) {QUESTIONS[i % len(QUESTIONS)]}"
        text = "\n".join([question, *(t["content"] for t in history)])
        t0 = time.perf_counter()
        scan.scan(text)
        t1 = time.perf_counter()
        request = prepare(question)
        t2 = time.perf_counter()
        decision = decide(request)
        t3 = time.perf_counter()
        scanned.append((t1 - t0) * 1000)
        prepared.append((t2 - t1) * 1000)
        decided.append((t3 - t2) * 1000)
        allowed += decision.allowed

    fresh, seen = [], passages
    for i in range(args.fresh):
        passages = [{**p, "text": f"{p['text']}(edition {stamp}-{i})"} for p in seen]
        request = prepare(f"({i}) {QUESTIONS[i % len(QUESTIONS)]}")
        t0 = time.perf_counter()
        decide(request)
        fresh.append((time.perf_counter() - t0) * 1000)

    def line(values: list[float]) -> str:
        return f"p50 {statistics.median(values):6.2f} ms, p95 {percentile(values, 95):6.2f} ms"

    print(f"{args.questions} decisions, 5 chunks each, {allowed} allowed")
    print(f"  gate.decide (the decision):  {line(decided)}  (goal p95 <= 15 ms)")
    print(f"  gate.prepare (the payload):  {line(prepared)}")
    print(f"  bare PII scan (baseline):    {line(scanned)}")
    print(f"  gate.decide, new passages:   {line(fresh)}  ({args.fresh} decisions)")
    ratio = percentile(decided, 95) / percentile(scanned, 95)
    print(f"ratio decision/scan at p95: {ratio:.2f}")


if __name__ == "__main__":
    main()
