"""What the PII/secret scan costs per chunk and per prompt.

    .venv/bin/python bench/scan.py [--rounds 200]

Chunks of 1,000 characters are cut from realistic handbook prose, one in four with a
piece of personal data or a credential in it. Each is scanned `rounds` times (after one
warm-up scan that loads presidio, whose time is printed separately), then prompts of
five chunks joined (what the egress gate scans for a question with five retrieved
passages). The baseline, in the same process over the same texts, is a single
precompiled `re` search for email addresses, the cheapest scan one could run; the ratio
says how much the full scanner (presidio's recognizers plus our secret patterns) costs
over it.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import percentile  # noqa: E402 - bench/ is on sys.path

PROSE = """\
Our core hours are 10:00 to 15:30, Monday to Friday. Most teams start between 08:00 and
09:30. Night-shift staff at the distribution centres work 22:00-06:00 and receive a
supplement of 25% on their base rate. Overtime beyond 48 hours per week needs written
approval from your manager and from People Operations, and is paid at 1.5x for the first
10 hours. Submit claims within 30 days through the finance portal. Meals are reimbursed up
to EUR 45.00 per day (USD 50 in the Denver office); hotel stays up to EUR 160 per night, or
EUR 210 in London, Paris and Zurich. Keep receipts for seven years: tax audits in 2021 and
2023 asked for them. Purchase orders above 2,500 need a PO number (format PO-2024-00123)
before the invoice arrives. Full-time staff receive 26 days of annual leave plus public
holidays; part-time staff receive a pro-rata share (for example 15.6 days at 0.6 FTE).
Laptops run the managed image 2024.3, firmware 1.12.4.7, and the VPN client 7.4.1. Report
phishing to the security team within one hour; our ISO 27001 certificate depends on it.
The canteen serves lunch from 11:45 to 14:15. Car park spaces 101-148 are reserved for
car-sharing. Reviews happen every six months, in January and July. Salary bands are
published on the intranet and updated each April by 2.0 to 3.5 percent.
"""

SENSITIVE = [
    "Contact jane.doe@acme-corp.com for the contract.",
    "Refund to IBAN DE89 3704 0044 0532 0130 00 please.",
    "The key sk-proj-4fTq9ZxW2bLm7RkP0sYvN3cHjD8aEuG1iKoQ5wXz6tBy leaked.",
    "Call +49 30 901820 before noon.",
    "postgres://billing:Xk9wL2q@db01.acme.com:5432/billing is the URL.",
]

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")


def make_chunks(n: int, rng: random.Random) -> list[str]:
    words = PROSE.split()
    chunks = []
    for i in range(n):
        start = rng.randrange(len(words))
        text = ""
        j = start
        while len(text) < 1000:
            text += words[j % len(words)] + " "
            j += 1
        text = text[:1000]
        if i % 4 == 0:
            pos = rng.randrange(0, 900)
            sentence = rng.choice(SENSITIVE)
            text = (text[:pos] + " " + sentence + " " + text[pos:])[:1000]
        chunks.append(text)
    return chunks


def timed(fn, texts: list[str], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        for t in texts:
            t0 = time.perf_counter()
            fn(t)
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=20)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from apps.routing.pii import warm_up
    from apps.routing.scan import scan

    import_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    warm_up()
    scan("warm up jane@example.com")
    load_ms = (time.perf_counter() - t0) * 1000

    rng = random.Random(7)
    chunks = make_chunks(args.chunks, rng)
    prompts = ["\n\n".join(rng.sample(chunks, 5)) for _ in range(args.chunks)]
    found = sum(1 for c in chunks if scan(c))
    print(f"import apps.routing.scan: {import_ms:.1f} ms; first load (presidio): {load_ms:.0f} ms")
    print(f"{len(chunks)} chunks of 1,000 chars, {found} with a finding; rounds={args.rounds}")

    def baseline(text: str) -> object:
        return EMAIL.search(text)

    rows = []
    for label, texts, rounds in (
        ("chunk (1,000 chars)", chunks, args.rounds),
        ("prompt (5 chunks)", prompts, max(1, args.rounds // 5)),
    ):
        base = timed(baseline, texts, rounds)
        full = timed(scan, texts, rounds)
        rows.append((label, full, base))
    print(
        f"{'':22} {'scan p50':>10} {'scan p95':>10} {'re p50':>10} {'re p95':>10} {'ratio p50':>10}"
    )
    for label, full, base in rows:
        print(
            f"{label:22} {statistics.median(full):9.2f}ms {percentile(full, 95):9.2f}ms "
            f"{statistics.median(base):9.4f}ms {percentile(base, 95):9.4f}ms "
            f"{statistics.median(full) / statistics.median(base):9.0f}x"
        )


if __name__ == "__main__":
    main()
