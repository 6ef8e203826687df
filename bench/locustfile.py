"""Locust's side of bench/load.py: each simulated employee signs in through the sign-in
form and asks its questions through the chat's real HTTP and SSE path, one after the
other, reading each stream to its end.

Run by bench/load.py as `locust --headless` in a process of its own (Locust patches the
standard library with gevent on import, which the benchmark's own process must not be).
Reads from the environment:

    LOAD_USERS      JSON list of [username, password], one per simulated employee
    LOAD_QUESTIONS  JSON list of questions; each employee asks LOAD_PER_USER of them
    LOAD_PER_USER   how many questions each employee asks
    LOAD_RESULTS    a file: one JSON line per question asked (below)

A line: status (the HTTP status), first (seconds from the request to the first thing the
employee would see: the evidence quotes, a queue place, a token, the final event, or a
refusal's status line), complete (seconds to the final `done` event; null without one),
dropped (a 200 stream that ended, or broke, before its `done` event), busy (refused as
"model busy", by status or in the final event), answered (the final event's status is
"complete").
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time

import gevent
from locust import HttpUser, between, events, task
from locust.exception import StopUser

USERS = json.loads(os.environ["LOAD_USERS"])
QUESTIONS = json.loads(os.environ["LOAD_QUESTIONS"])
PER_USER = int(os.environ["LOAD_PER_USER"])
RESULTS = open(os.environ["LOAD_RESULTS"], "a", buffering=1)  # noqa: SIM115 - for the run
VISIBLE = {"evidence", "queue", "token", "done"}
_next_user = itertools.count()
_finished = itertools.count(1)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    return found.group(1) if found else ""


class Employee(HttpUser):
    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.index = next(_next_user)
        username, password = USERS[self.index % len(USERS)]
        page = self.client.get("/login/", name="sign-in page")
        signed_in = self.client.post(
            "/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": _csrf(page.text),
            },
            headers={"Referer": f"{self.host}/login/"},
            allow_redirects=False,
            name="sign in",
        )
        if signed_in.status_code != 302:
            raise RuntimeError(f"{username} could not sign in: {signed_in.status_code}")
        self.asked = 0

    @task
    def ask(self) -> None:
        if self.asked >= PER_USER:
            if next(_finished) == len(USERS):
                gevent.spawn(self.environment.runner.quit)  # everyone is done
            raise StopUser()
        question = QUESTIONS[(self.index * PER_USER + self.asked) % len(QUESTIONS)]
        self.asked += 1
        RESULTS.write(json.dumps(self._ask(question)) + "\n")

    def _ask(self, question: str) -> dict:
        row = {"status": 0, "first": None, "complete": None, "dropped": False, "busy": False}
        row["answered"] = False
        started = time.perf_counter()
        token = self.client.cookies.get("csrftoken", "")
        with self.client.post(
            "/chat/ask/",
            data={"question": question},
            headers={"X-CSRFToken": token, "Referer": f"{self.host}/chat/"},
            stream=True,
            catch_response=True,
            name="ask (stream)",
        ) as response:
            row["status"] = response.status_code
            if response.status_code != 200:
                row["first"] = time.perf_counter() - started
                row["busy"] = response.status_code == 503 and "busy" in response.text
                response.success()  # counted by bench/load.py, by status
                return row
            kind = ""
            try:
                for line in response.iter_lines(decode_unicode=True):
                    if line.startswith("event: "):
                        kind = line[len("event: ") :]
                        if kind in VISIBLE and row["first"] is None:
                            row["first"] = time.perf_counter() - started
                    elif line.startswith("data: ") and kind == "done":
                        data = json.loads(line[len("data: ") :])
                        row["complete"] = time.perf_counter() - started
                        row["answered"] = data.get("status") == "complete"
                        row["busy"] = "busy" in (data.get("error") or "")
            except Exception as exc:  # noqa: BLE001 - a broken stream is what is counted
                row["error"] = repr(exc)
            row["dropped"] = row["complete"] is None
            response.success()
        return row


@events.quitting.add_listener
def _close(**_kwargs: object) -> None:
    RESULTS.close()
