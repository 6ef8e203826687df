"""Concurrent employees: N people sign in and ask at once, through the real HTTP and SSE
path, against gunicorn with the production config (docker/gunicorn.conf.py: its default
workers and threads), with a real Celery worker, vector store owner and the packaged
llama.cpp model.

    .venv/bin/python bench/load.py [--users 1,10,50] [--per-user 2]

The load is Locust (bench/locustfile.py), run headless in a process of its own for each N.
Every employee asks --per-user questions one after the other, all N starting at once.
Printed for each N: time to first visible content (evidence quotes, a queue place, a token,
or a refusal) p50/p95, time to a complete answer p50/p95, responses by status, dropped
streams, answers refused as busy, the web processes' peak RSS (master and workers), and
the answers per minute the machine sustained; then each N's p50s as a ratio to N=1's,
measured in the same run (the baseline: one person alone). A throw-away database
(`enclave_bench_load`); the machine is shared and noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from chat import QUESTIONS  # noqa: E402 - bench/ is on sys.path
from common import (  # noqa: E402
    ROOT,
    demo_reader,
    isolate,
    percentile,
    prepare_database,
    start_model_and_store,
    tree_rss,
)

DB_NAME = "enclave_bench_load"
BROKER = "redis://127.0.0.1:6379/9"
# The cache of its own (rate counts, the model queue), emptied between the runs of each N.
CACHE = "redis://127.0.0.1:6379/8"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="1,10,50", help="comma-separated N to run")
    parser.add_argument("--per-user", type=int, default=2, help="questions each employee asks")
    parser.add_argument("--max-seconds", type=int, default=900, help="cap on one N's run")
    args = parser.parse_args()
    sizes = [int(n) for n in args.users.split(",")]

    var = Path(tempfile.mkdtemp(prefix="enclave-bench-load-"))
    os.environ["CACHE_URL"] = CACHE
    isolate(db_url=prepare_database(DB_NAME), var=var, broker=BROKER)
    import redis
    from django.contrib.auth.models import User

    from tests.support.live_web import start_web, stop_web
    from tests.support.llm import stop_llm_server
    from tests.support.vectorstore import stop_vectorstore
    from tests.support.worker import kill_worker, start_worker

    store_proc, llm, base_url = start_model_and_store(var)
    env = {**os.environ, "LOCAL_LLM_BASE_URL": base_url}
    worker = start_worker(env=env, log=var / "worker.log", name="bench-load")
    # The production config's own worker count (start_web pins 1 for the tests).
    workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
    web = start_web("gunicorn", env=env, log=var / "web.log", workers=workers)
    results: dict[int, dict] = {}
    try:
        first = demo_reader("bench-load")
        groups = list(first.groups.all())
        people = []
        for i in range(max(sizes)):
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(f"load-{first.pk}-{i}", password=password)
            user.groups.add(*groups)
            people.append([user.username, password])
        # Warm-up, not counted: enough people at once that every web worker loads its
        # embedding model and opens its connections before the first measured run.
        warm = min(2 * workers, len(people))
        _run(warm, people[:warm], argparse.Namespace(**{**vars(args), "per_user": 1}), web, var)
        for n in sizes:
            redis.Redis.from_url(CACHE).flushdb()  # no rate counts carried
            results[n] = _run(n, people[:n], args, web, var)
            _print(n, results[n])
    finally:
        stop_web(web)
        kill_worker(worker)
        stop_llm_server(llm)
        stop_vectorstore(store_proc)
        redis.Redis.from_url(BROKER).flushdb()

    base = results.get(1) or results[sizes[0]]
    print(f"ratios to N={1 if 1 in results else sizes[0]} (p50s):")
    for n, r in results.items():
        print(
            f"  N={n:3d}: first content {_ratio(r['first'], base['first'])}, "
            f"complete answer {_ratio(r['complete'], base['complete'])}"
        )


def _run(n: int, people: list[list[str]], args: argparse.Namespace, web, var: Path) -> dict:  # noqa: ANN001
    out = var / f"load-{n}-{time.monotonic_ns()}.jsonl"
    env = {
        **os.environ,
        "LOAD_USERS": json.dumps(people),
        "LOAD_QUESTIONS": json.dumps(QUESTIONS),
        "LOAD_PER_USER": str(args.per_user),
        "LOAD_RESULTS": str(out),
    }
    locust = Path(sys.executable).with_name("locust")
    cmd = [
        str(locust),
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(n),
        "--spawn-rate",
        str(n),
        "--host",
        web.url,
        "--run-time",
        f"{args.max_seconds}s",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    rss = _PeakRss(web.proc.pid)
    rss.start()
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    rss.stop()
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"locust exited with {done.returncode}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    statuses: dict[int, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    first = [r["first"] for r in rows if r["first"] is not None]
    complete = [r["complete"] for r in rows if r["complete"] is not None and r["answered"]]
    return {
        "asked": len(rows),
        "expected": n * args.per_user,
        "first": first,
        "complete": complete,
        "statuses": statuses,
        "dropped": sum(r["dropped"] for r in rows),
        "busy": sum(r["busy"] for r in rows),
        "nothing": len(rows) - len(first),
        "answered": len(complete),
        "wall": wall,
        "rss": rss.peak,
    }


def _print(n: int, r: dict) -> None:
    def p(values: list[float]) -> str:
        if not values:
            return "none"
        p50, p95 = percentile(values, 50) * 1000, percentile(values, 95) * 1000
        return f"p50 {p50:6.0f} ms, p95 {p95:6.0f} ms"

    print(f"N={n}: {r['asked']} questions of {r['expected']} in {r['wall']:.0f} s")
    print(f"  first visible content: {p(r['first'])}; nothing seen: {r['nothing']}")
    print(f"  complete answer:       {p(r['complete'])} ({r['answered']} answered)")
    statuses = ", ".join(f"{s}: {c}" for s, c in sorted(r["statuses"].items()))
    print(f"  statuses: {statuses}; dropped streams: {r['dropped']}; busy: {r['busy']}")
    print(f"  answers per minute: {r['answered'] / r['wall'] * 60:.1f}")
    print(f"  web processes' peak RSS: {r['rss'] / 1024 / 1024:.0f} MiB", flush=True)


def _ratio(values: list[float], base: list[float]) -> str:
    if not values or not base:
        return "n/a"
    return f"{percentile(values, 50) / percentile(base, 50):.2f}x"


class _PeakRss(threading.Thread):
    """The highest sum of RSS over the gunicorn master and its workers, every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, tree_rss(self.pid))

    def stop(self) -> None:
        self._done.set()
        self.join()


if __name__ == "__main__":
    main()
