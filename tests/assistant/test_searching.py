"""How many chat searches a web process runs at once (apps/assistant/searching.py)."""

from __future__ import annotations

import threading

from apps.assistant.searching import search_turn


def _search_in_thread(entered: list[str], name: str, leave: threading.Event) -> threading.Thread:
    def search() -> None:
        with search_turn(holds_model=False):
            entered.append(name)
            leave.wait(10)

    thread = threading.Thread(target=search, daemon=True)
    thread.start()
    return thread


def test_a_search_past_the_limit_waits_and_the_models_holder_does_not(settings):
    settings.CHAT_SEARCHES_AT_ONCE = 1
    entered: list[str] = []
    leave = threading.Event()
    first = _search_in_thread(entered, "first", leave)
    while not entered:
        first.join(0.01)
    second = _search_in_thread(entered, "second", leave)
    second.join(0.5)
    assert entered == ["first"]  # the second waits its turn
    with search_turn(holds_model=True):  # the model waits on this one: no turn to wait
        entered.append("holder")
    assert entered == ["first", "holder"]
    leave.set()
    first.join(10)
    second.join(10)
    assert entered == ["first", "holder", "second"]


def test_no_limit_when_it_is_zero(settings):
    settings.CHAT_SEARCHES_AT_ONCE = 0
    entered: list[str] = []
    leave = threading.Event()
    threads = [_search_in_thread(entered, str(i), leave) for i in range(5)]
    for thread in threads:
        thread.join(0.2)
    assert sorted(entered) == ["0", "1", "2", "3", "4"]
    leave.set()
