"""Local model decode rate: tokens/s of the llama.cpp server as Enclave streams from it.

    .venv/bin/python bench/llm.py [--rounds 3] [--max-tokens 192] [--base-url URL]

Without --base-url it starts the packaged SmolLM2-135M-Instruct on a free port (as the
tests do) and stops it after. Each round streams one answer through Enclave's own client
(apps/routing/llm.stream_chat) and reports time to first token and the decode rate
(tokens after the first / seconds after the first). Printed next to it: the same rounds'
p50, so a noisy shared machine shows as spread. Point --base-url at a vLLM server to
measure a production GPU the same way (one stream; vLLM's aggregate rate over many
concurrent streams is far higher — see README "Capacity").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = (
    "Write a detailed, step-by-step guide for a new warehouse employee: badges, safety "
    "shoes, the robots, breaks, who to call. Use at least ten numbered steps."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--base-url", default="")
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    args = parser.parse_args()

    import django

    django.setup()
    from apps.routing.llm import Endpoint, StreamResult, stream_chat
    from tests.support.llm import free_port, start_llm_server, stop_llm_server

    proc = None
    base_url = args.base_url
    if not base_url:
        port = free_port()
        log = Path(tempfile.mkdtemp()) / "llm.log"
        started = time.perf_counter()
        proc = start_llm_server(port=port, log=log)
        up_s = time.perf_counter() - started
        print(f"llama.cpp server with SmolLM2-135M-Instruct up in {up_s:.1f} s")
        base_url = f"http://127.0.0.1:{port}/v1"
    endpoint = Endpoint(
        base_url=base_url, model=args.model, where="local", display="bench", read_timeout=120
    )
    messages = [{"role": "user", "content": PROMPT}]
    try:
        list(stream_chat(endpoint, messages, max_tokens=16))  # warm-up
        rates, firsts = [], []
        for i in range(args.rounds):
            result = StreamResult()
            stamps = []
            for _ in stream_chat(endpoint, messages, max_tokens=args.max_tokens, result=result):
                stamps.append(time.perf_counter())
            tokens = max(result.completion_tokens, len(stamps))
            decode_s = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
            rate = (len(stamps) - 1) / decode_s if len(stamps) > 1 else float("nan")
            rates.append(rate)
            firsts.append(result.first_token_s or float("nan"))
            print(
                f"round {i + 1}: {tokens} tokens, first token {result.first_token_s:.3f} s, "
                f"decode {rate:.1f} tok/s"
            )
        print(
            f"decode p50 {statistics.median(rates):.1f} tok/s "
            f"(min {min(rates):.1f}, max {max(rates):.1f}); "
            f"first token p50 {statistics.median(firsts) * 1000:.0f} ms; "
            f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
        )
    finally:
        if proc is not None:
            stop_llm_server(proc)


if __name__ == "__main__":
    main()
