"""The fair queue in front of the local model (apps/routing/model_queue.py), against the
test session's real Redis, each test under a key prefix of its own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from apps.routing.model_queue import BUSY, ModelBusy, ModelQueue
from tests.conftest import TEST_BROKER
from tests.support.llm import free_port


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_BROKER)
    yield client
    client.close()


@pytest.fixture
def make(redis_client) -> Iterator:
    """A queue of this test's own (its own key prefix), with the options it names."""
    prefix = f"enclave-test-{uuid.uuid4().hex[:12]}:modelqueue:"

    def build(**overrides) -> ModelQueue:
        options = {"slots": 1, "ttl": 10.0, "max_length": 100, "max_wait": 30.0} | overrides
        return ModelQueue(redis_client, prefix=prefix, **options)

    yield build
    for key in redis_client.scan_iter(prefix + "*"):
        redis_client.delete(key)


def _admitted(queue: ModelQueue, waiting: list[tuple[str, str]]) -> tuple[str, str]:
    """The one waiting (user, ticket) that holds the slot now; it leaves the list."""
    got = [(user, t) for user, t in waiting if queue.poll(t) is None]
    assert len(got) == 1, got
    waiting.remove(got[0])
    return got[0]


def test_one_persons_ten_questions_do_not_hold_back_two_colleagues(make):
    queue = make(slots=1)
    assert queue.join("first", "zoe") is None  # the model is free: the slot at once
    waiting = [("alice", f"a{i}") for i in range(1, 11)] + [("bob", "b1"), ("carol", "c1")]
    places = {t: queue.join(t, user) for user, t in waiting}
    # Alice asked all ten first, yet Bob and Carol are behind only her first.
    assert places["a1"] == 0 and places["a2"] == 1
    assert places["b1"] == 1 and places["c1"] == 2
    assert {t: queue.poll(t) for _, t in waiting} == {
        "a1": 0, "b1": 1, "c1": 2, "a2": 3, "a3": 4, "a4": 5, "a5": 6,
        "a6": 7, "a7": 8, "a8": 9, "a9": 10, "a10": 11,
    }  # fmt: skip

    served = []
    holder = "first"
    while waiting:
        queue.leave(holder)  # the answer ends: the next in turn gets the slot at once
        user, holder = _admitted(queue, waiting)
        served.append(holder)
    assert served == ["a1", "b1", "c1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10"]


def test_turns_rotate_across_people_and_keep_each_persons_order(make):
    queue = make(slots=1)
    queue.join("busy", "zoe")
    order = [("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("bob", "b2"), ("carol", "c1")]
    for user, t in order:
        queue.join(t, user)
    served, holder, waiting = [], "busy", list(order)
    while waiting:
        queue.leave(holder)
        _, holder = _admitted(queue, waiting)
        served.append(holder)
    assert served == ["a1", "b1", "c1", "a2", "b2"]


def test_several_slots_are_filled_in_turn(make):
    queue = make(slots=2)
    assert queue.join("a1", "alice") is None
    assert queue.join("a2", "alice") is None  # two slots: both at once
    assert queue.join("a3", "alice") == 0
    assert queue.join("b1", "bob") == 1
    assert queue.state().busy == 2 and queue.state().waiting == 2


def test_a_full_queue_refuses_at_once_with_the_busy_sentence(make):
    queue = make(slots=1, max_length=2)
    queue.join("h", "zoe")
    queue.join("w1", "alice")
    assert not queue.state().full
    queue.join("w2", "bob")
    assert queue.state().full
    with pytest.raises(ModelBusy) as refused:
        queue.join("w3", "carol")
    assert str(refused.value) == BUSY == "The model is busy; try again in a minute."
    assert refused.value.retry_after == 60
    assert queue.state().waiting == 2  # the refused one took no place


def test_the_slot_is_given_back_when_the_answer_raises(make):
    queue = make(slots=1)
    with pytest.raises(RuntimeError):
        with queue.turn("alice") as turn:
            assert list(turn.wait()) == []  # free: no waiting
            assert queue.state().busy == 1
            raise RuntimeError("the model call failed")
    assert queue.state().busy == 0
    assert queue.join("next", "bob") is None


def test_a_slot_whose_holder_died_is_free_after_its_deadline(make):
    queue = make(slots=1, ttl=0.5)
    assert queue.join("crashed", "alice") is None  # then nothing keeps it: the process died
    assert queue.join("b1", "bob") == 0
    deadline = time.monotonic() + 5
    while queue.poll("b1") is not None:  # polling keeps b1's own place alive
        assert time.monotonic() < deadline, "the dead holder's slot was never freed"
        time.sleep(0.1)
    assert queue.state().busy == 1  # b1's now
    assert queue.hold("crashed") is False


def test_a_waiter_that_died_loses_its_place_and_the_others_move_up(make):
    queue = make(slots=1, ttl=0.6)
    with queue.turn("zoe"):  # a live holder: its thread keeps the slot
        queue.join("dead", "alice")  # nobody polls it again
        assert queue.join("b1", "bob") == 1
        deadline = time.monotonic() + 5
        while queue.poll("b1") != 0:
            assert time.monotonic() < deadline, "the dead waiter kept its place"
            time.sleep(0.1)
        with pytest.raises(LookupError):
            queue.poll("dead")
        assert queue.state().busy == 1  # zoe's slot outlived several deadlines


def test_the_wait_ends_busy_after_the_longest_wait_and_gives_the_place_back(make):
    queue = make(slots=1, max_wait=0.6)
    queue.join("holder", "zoe")
    with pytest.raises(ModelBusy):
        with queue.turn("alice") as turn:
            places = []
            for ahead in turn.wait():
                places.append(ahead)
                queue.hold("holder")
    assert places[:1] == [0]
    assert queue.state().waiting == 0


def test_a_waiter_hears_its_place_as_it_moves_up(make):
    queue = make(slots=1)
    queue.join("holder", "zoe")
    queue.join("b1", "bob")
    queue.join("c1", "carol")
    with queue.turn("alice") as turn:
        seen = []
        for ahead in turn.wait():
            seen.append(ahead)
            if ahead == 2:
                queue.leave("c1")  # carol gives up
            elif ahead == 1:
                queue.leave("holder")  # zoe's answer ends; bob's begins
                queue.poll("b1")
            elif ahead == 0:
                queue.leave("b1")
        assert queue.state().busy == 1  # alice's
    assert seen == [2, 1, 0]
    assert queue.state().busy == 0


def test_an_unreachable_redis_lets_the_request_through():
    gone = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    queue = ModelQueue(gone, prefix="x:", slots=1, ttl=5, max_length=0, max_wait=1)
    with queue.turn("alice") as turn:
        assert list(turn.wait()) == []


def test_a_place_outlives_work_longer_than_its_deadline_between_joining_and_waiting(make):
    # The chat joins before its search and waits after it: the search may take longer
    # than the deadline, and the place must still be there.
    queue = make(slots=1, ttl=0.6)
    with queue.turn("zoe"):  # a live holder
        turn = queue.turn("alice")
        turn.join()
        assert turn.ahead == 0
        queue.join("nobody-keeps-this", "bob")
        time.sleep(2.0)  # the search: more than three deadlines
        with pytest.raises(LookupError):
            queue.poll("nobody-keeps-this")  # the same wait without a keeper: lost
        assert queue.state().waiting == 1  # alice's, kept by her turn's thread
        assert next(turn.wait()) == 0
        turn.leave()
    assert queue.state().waiting == 0 and queue.state().busy == 0


def test_a_slot_that_comes_during_the_work_is_kept_for_the_answer(make):
    queue = make(slots=1, ttl=0.6)
    holder = queue.turn("zoe")
    holder.join()
    with queue.turn("alice") as turn:
        assert turn.ahead == 0
        holder.leave()  # zoe's answer ends while alice is still searching: her slot now
        time.sleep(2.0)
        assert list(turn.wait()) == []  # no waiting left: the model at once
        assert queue.state().busy == 1
        assert queue.join("bob-1", "bob") == 0  # alice's slot was not lost to bob
    assert queue.state().busy == 1  # bob's, handed over when alice left


def test_the_longest_wait_counts_from_joining(make):
    queue = make(slots=1, max_wait=0.5)
    with queue.turn("zoe"):
        with pytest.raises(ModelBusy):
            with queue.turn("alice") as turn:
                time.sleep(0.7)  # the search used up the whole wait
                next(turn.wait())
        assert queue.state().waiting == 0  # the place was given back


def test_a_turn_joined_before_its_block_is_joined_once_and_left_once(make):
    queue = make(slots=1)
    queue.join("holder", "zoe")
    turn = queue.turn("alice")
    turn.join()
    with turn:
        assert queue.state().waiting == 1
        turn.leave()  # nothing to answer: given back at once
        assert queue.state().waiting == 0
        queue.join("b1", "bob")
    assert queue.state().waiting == 1  # bob's: leaving twice took nothing of another's
