"""SCIM PATCH latency at 10,000 users, against the same requests at 100 users in the same
run, over HTTP to a live gunicorn.

    .venv/bin/python bench/api_scim.py [--repeats 40]

A throw-away database (`enclave_bench_scim`) gets 100 users, then 10,000; at each size
one user in five has a live session (sessions are what deactivation has to find) and one
group holds half the users. Timed, each `--repeats` times: a group membership PATCH (add
one member, then remove them: Okta's filtered remove), and a user PATCH of `active`
(deactivate, which ends sessions and revokes API tokens, then reactivate). p50/p95 per
operation and the ratio of the medians, 10k over 100, are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import isolate, percentile, prepare_database  # noqa: E402 - bench/ is on sys.path

DB_NAME = "enclave_bench_scim"
BROKER = "redis://127.0.0.1:6379/12"
SIZES = (100, 10_000)


def _grow(to: int, group) -> None:  # noqa: ANN001 - Django's Group, imported after setup
    """Users up to `to`; every other one in `group`; a session for one in five."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    have = User.objects.count()
    new = User.objects.bulk_create(
        # "!" is Django's unusable password: these accounts sign in through the IdP.
        [User(username=f"user{n:05d}@example.com", password="!") for n in range(have, to)],  # noqa: S106
        batch_size=2000,
    )
    group.user_set.add(*new[::2])
    store = SessionStore()
    expires = timezone.now() + timedelta(hours=12)
    Session.objects.bulk_create(
        [
            Session(
                session_key=store._get_new_session_key(),
                session_data=store.encode({SESSION_KEY: str(u.pk)}),
                expire_date=expires,
            )
            for u in new[::5]
        ],
        batch_size=2000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed requests per operation")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="enclave-bench-scim-"))
    isolate(db_url=prepare_database(DB_NAME), var=var, broker=BROKER)
    import httpx
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.models import Session

    from apps.scim.auth import scim_token_create
    from tests.support.live_web import start_web, stop_web

    # A run starts from nothing: the users of an earlier run go (a SCIM user's audit rows
    # keep their copied names).
    User.objects.filter(username__startswith="user").delete()
    Session.objects.all().delete()
    Group.objects.filter(name="Bench").delete()
    group = Group.objects.create(name="Bench")
    web = start_web("gunicorn", env=dict(os.environ), log=var / "web.log")
    http = httpx.Client(
        base_url=f"{web.url}/scim/v2",
        headers={"Authorization": f"Bearer {scim_token_create(name='bench').secret}"},
        timeout=60,
    )
    results: dict[tuple[str, int], list[float]] = {}

    def timed(key: tuple[str, int], method: str, path: str, body: dict) -> None:
        started = time.perf_counter()
        response = http.request(method, path, json=body)
        results.setdefault(key, []).append(time.perf_counter() - started)
        if response.status_code not in (200, 204):
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")

    def op(kind: str, value: object, path: str) -> dict:
        return {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": kind, "path": path, "value": value}],
        }

    try:
        for size in SIZES:
            _grow(size, group)
            outsider = User.objects.exclude(groups=group).order_by("pk").last()
            # The first user: signed in (until the first deactivation ends the session).
            target = User.objects.filter(username__startswith="user").order_by("pk").first()
            assert outsider is not None and target is not None
            http.get("/Users", params={"count": "1"})  # warm the connection and the worker
            for _ in range(args.repeats):
                add = op("add", [{"value": str(outsider.pk)}], "members")
                timed(("group add member", size), "PATCH", f"/Groups/{group.pk}", add)
                remove = op("remove", None, f'members[value eq "{outsider.pk}"]')
                timed(("group remove member", size), "PATCH", f"/Groups/{group.pk}", remove)
                timed(("user deactivate", size), "PATCH", f"/Users/{target.pk}",
                      op("replace", False, "active"))  # fmt: skip
                timed(("user reactivate", size), "PATCH", f"/Users/{target.pk}",
                      op("replace", True, "active"))  # fmt: skip
            sessions = Session.objects.count()
            print(f"  {size:>6} users, {sessions} live sessions: measured", flush=True)
    finally:
        http.close()
        stop_web(web)

    print(f"SCIM PATCH over HTTP, {args.repeats} requests each:")
    for name in ("group add member", "group remove member", "user deactivate", "user reactivate"):
        small, large = results[(name, SIZES[0])], results[(name, SIZES[1])]
        ratio = statistics.median(large) / statistics.median(small)
        print(
            f"  {name:20} {SIZES[0]} users p50 {statistics.median(small) * 1000:6.1f} ms"
            f" | {SIZES[1]} users p50 {statistics.median(large) * 1000:6.1f} ms,"
            f" p95 {percentile(large, 95) * 1000:6.1f} ms | ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
