"""API overhead: a question through `POST /v1/chat/completions` (the official openai
client, over HTTP, to a live gunicorn) against the chat page's service call for the same
question (`apps.assistant.services.ask`, in this process).

    .venv/bin/python bench/api.py [--rounds 3]

A throw-away database (`enclave_bench_api`), vector store owner and llama.cpp server (the
packaged SmolLM2 model) are started and the demo documents ingested. For each question
both paths run in turn (the order alternates each round), each after a short unrelated
prompt that clears llama.cpp's prompt-prefix cache; both answer with the same model at
temperature 0 from the same prompt, so the model's share is the same and what differs is
the API's own work: token check and its audit event, the conversation row, JSON over
HTTP, the client. The ratio of the summed times and the median of the per-question
ratios are printed (goal <= 1.05).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from chat import QUESTIONS, _flush  # noqa: E402 - bench/ is on sys.path
from common import demo_reader, isolate, prepare_database, start_model_and_store  # noqa: E402

DB_NAME = "enclave_bench_api"
BROKER = "redis://127.0.0.1:6379/12"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each question is asked")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="enclave-bench-api-"))
    isolate(db_url=prepare_database(DB_NAME), var=var, broker=BROKER)
    import redis
    from django.conf import settings
    from openai import OpenAI

    from apps.accounts.tokens import token_create
    from apps.assistant import services as chat
    from tests.support.live_web import start_web, stop_web
    from tests.support.llm import MODEL_ALIAS, stop_llm_server
    from tests.support.vectorstore import stop_vectorstore

    store_proc, llm, base_url = start_model_and_store(var)
    settings.QUESTION_RATE_PER_MINUTE = 1_000_000  # one user asks everything
    web = start_web(
        "gunicorn",
        env={**os.environ, "LOCAL_LLM_BASE_URL": base_url, "QUESTION_RATE_PER_MINUTE": "1000000"},
        log=var / "web.log",
    )
    try:
        user = demo_reader("bench-api")
        client = OpenAI(
            base_url=f"{web.url}/v1",
            api_key=token_create(user=user, name="bench", days=7).secret,
            max_retries=0,
            timeout=300,
        )

        def service(question: str) -> tuple[float, str]:
            started = time.perf_counter()
            conversation = chat.conversation_create(user=user)
            events = list(chat.ask(user=user, conversation=conversation, question=question))
            took = time.perf_counter() - started
            return took, str([e.data.get("text", "") for e in events if e.kind == "token"])

        def api(question: str) -> tuple[float, str]:
            started = time.perf_counter()
            reply = client.chat.completions.create(
                model="enclave", messages=[{"role": "user", "content": question}]
            )
            took = time.perf_counter() - started
            return took, reply.model_extra["enclave"]["message_id"]

        service(QUESTIONS[0])  # warm both: embedding model, tokenizer, connections
        api(QUESTIONS[0])
        times: dict[str, list[float]] = {"service": [], "api": []}
        for round_ in range(args.rounds):
            for i, question in enumerate(QUESTIONS):
                order = [("service", service), ("api", api)]
                if (round_ + i) % 2:
                    order.reverse()
                for name, run in order:
                    _flush(base_url, MODEL_ALIAS)
                    took, _ = run(question)
                    times[name].append(took)
            print(f"  round {round_ + 1}: {len(times['api'])} questions each way", flush=True)
    finally:
        stop_web(web)
        stop_llm_server(llm)
        stop_vectorstore(store_proc)
        redis.Redis.from_url(BROKER).flushdb()

    ours, theirs = times["api"], times["service"]
    paired = [a / s for a, s in zip(ours, theirs, strict=True)]
    print(f"whole answers over {len(ours)} questions ({args.rounds} rounds):")
    print(f"  chat service call (in process): median {statistics.median(theirs) * 1000:7.1f} ms")
    print(f"  API over HTTP (openai client):  median {statistics.median(ours) * 1000:7.1f} ms")
    print(f"ratio API/service, summed times: {sum(ours) / sum(theirs):.3f} (goal <= 1.05)")
    print(f"ratio API/service, median of per-question ratios: {statistics.median(paired):.3f}")


if __name__ == "__main__":
    main()
