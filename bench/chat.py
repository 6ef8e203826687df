"""Time to first token through Enclave vs the same request straight to the model server.

    .venv/bin/python bench/chat.py [--rounds 3]

A throw-away database (`enclave_bench_chat`), vector store owner and llama.cpp server
(the packaged SmolLM2 model) are started; the demo documents are ingested through the
real pipeline. For each question an employee asks through the web view (Django's test
client: session, view, retrieval with the query embedding, audit events, prompt with
token counts, SSE), and the time until the first `token` event is taken. Then the exact
messages Enclave sent are sent straight to the server with a bare client, and the time
to the first streamed piece is taken. Before each request a short unrelated prompt
clears llama.cpp's prompt-prefix cache, so neither side reuses the other's work. The
ratio of the medians is printed (goal <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from common import (  # noqa: E402 - bench/ is on sys.path
    demo_reader,
    isolate,
    percentile,
    prepare_database,
    start_model_and_store,
)

DB_NAME = "enclave_bench_chat"
BROKER = "redis://127.0.0.1:6379/12"
QUESTIONS = [
    "How many vacation days do new employees get?",
    "How do I connect to the VPN from home?",
    "What should I do on my first day?",
    "What does the Pathfinder product do?",
    "How do I reset my password?",
    "Who approves expense reports?",
    "Can I carry over unused vacation days?",
    "What laptop do new starters receive?",
]


def _first_token_direct(base_url: str, model: str, messages: list[dict], max_tokens: int) -> float:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True
    )
    try:
        for event in stream:
            if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                return time.perf_counter() - started
    finally:
        stream.close()
    raise RuntimeError("the model streamed no text")


def _flush(base_url: str, model: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Say {uuid.uuid4().hex[:6]}."}],
        max_tokens=2,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each question is asked")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="enclave-bench-chat-"))
    isolate(db_url=prepare_database(DB_NAME), var=var, broker=BROKER)
    import redis
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from apps.assistant.models import Message
    from apps.routing.prompt import build_prompt
    from apps.routing.tokens import count_message_tokens
    from tests.support.llm import MODEL_ALIAS, stop_llm_server
    from tests.support.vectorstore import stop_vectorstore

    store_proc, llm, base_url = start_model_and_store(var)
    # One user asks every question of every round: the per-user rate limit is not measured here.
    settings.QUESTION_RATE_PER_MINUTE = 1_000_000
    try:
        user = demo_reader("bench")
        client = Client()
        client.force_login(user)

        def through_enclave(question: str) -> tuple[float | None, Message]:
            started = time.perf_counter()
            resp = client.post(reverse("assistant:ask"), {"question": question})
            first = None
            for piece in resp.streaming_content:
                if first is None and b"event: token" in piece:
                    first = time.perf_counter() - started
            return first, Message.objects.filter(role="assistant").latest("id")

        through_enclave(QUESTIONS[0])  # load the embedding model and the tokenizer
        ours, direct, skipped = [], [], set()
        for round_ in range(args.rounds):
            for question in QUESTIONS:
                _flush(base_url, MODEL_ALIAS)
                t_ours, reply = through_enclave(question)
                if t_ours is None:  # nothing relevant found: the model was not asked
                    skipped.add(question)
                    continue
                # The same messages Enclave sent: the prompt is a pure function of these.
                prompt = build_prompt(
                    question=question,
                    passages=[{k: v for k, v in p.items() if k != "n"} for p in reply.passages],
                    history=[],
                    count=count_message_tokens,
                    context_window=settings.LOCAL_LLM_CONTEXT,
                    answer_tokens=settings.LOCAL_LLM_MAX_TOKENS,
                )
                _flush(base_url, MODEL_ALIAS)
                t_direct = _first_token_direct(
                    base_url, MODEL_ALIAS, prompt.messages, settings.LOCAL_LLM_MAX_TOKENS
                )
                ours.append(t_ours)
                direct.append(t_direct)
            print(f"  round {round_ + 1}: {len(ours)} questions", flush=True)
    finally:
        stop_llm_server(llm)
        stop_vectorstore(store_proc)
        redis.Redis.from_url(BROKER).flushdb()

    def ms(values: list[float]) -> str:
        return (
            f"p50 {statistics.median(values) * 1000:6.1f} ms, "
            f"p95 {percentile(values, 95) * 1000:6.1f} ms"
        )

    if skipped:
        print(f"not answered from the documents (skipped): {sorted(skipped)}")
    print(f"time to first token over {len(ours)} questions ({args.rounds} rounds):")
    print(f"  through Enclave (web view, retrieval, audit, prompt): {ms(ours)}")
    print(f"  straight to the model server, same messages:          {ms(direct)}")
    ratio = statistics.median(ours) / statistics.median(direct)
    print(f"ratio Enclave/direct (medians): {ratio:.2f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
