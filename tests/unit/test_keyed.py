"""KeyedWorkers and Watermarks: order per key, Retry holding only its key, drop, settle."""

from __future__ import annotations

import threading

from interchange.adapters import ACK, DeadLetter, Delivery, Retry, TransportMessage
from interchange.adapters.keyed import KeyedWorkers, Watermarks, Work
from interchange.testing import wait_until


def _work(key: str, n: int) -> Work:
    message = TransportMessage(f"{key}-{n}", b"", key=key)
    return Work(key, lambda attempt: Delivery(message, "t", attempt=attempt), token=n)


def test_watermarks_move_only_past_records_all_done():
    marks = Watermarks()
    for offset in (5, 6, 7, 8):
        marks.add(0, offset)
    assert marks.done(0, 7) is None
    assert marks.done(0, 5) == 6
    assert marks.done(0, 6) == 8  # 7 was done already
    assert marks.done(0, 8) == 9
    marks.add(1, 0)
    marks.forget([1])
    assert marks.done(1, 0) is None


def test_a_settle_that_raises_handles_the_record_again_before_the_key_moves_on():
    settled: list[tuple[str, int]] = []
    refusals = iter([True, False])

    def settle(work, delivery, outcome):
        if work.key == "a" and work.token == 0 and next(refusals):
            raise ConnectionError("dead-letter channel down")
        settled.append((work.key, work.token))

    lanes = KeyedWorkers("t", 2, lambda d: ACK, settle)
    for n in range(3):
        lanes.submit(_work("a", n))
    wait_until(lambda: len(settled) == 3, 5)
    assert settled == [("a", 0), ("a", 1), ("a", 2)]
    assert lanes.join(5)


def test_dropped_keys_are_not_handled_and_their_room_is_given_back():
    gate = threading.Event()
    seen: list[str] = []

    def handler(delivery):
        seen.append(delivery.message.id)
        gate.wait(5)
        return ACK

    lanes = KeyedWorkers("t", 1, handler, lambda *a: None, limit=3)
    for n in range(3):
        lanes.submit(_work("a", n))
    assert not lanes.wait_for_room(0)
    wait_until(lambda: seen == ["a-0"], 5)
    gate.set()
    assert lanes.drop(lambda key: key == "a", timeout=5)
    assert lanes.wait_for_room(1)
    assert lanes.unsettled == 0
    lanes.join(5)
    assert seen == ["a-0"]


def test_dead_letter_and_retry_outcomes_reach_settle_only_when_final():
    outcomes: list[object] = []
    answers = iter([Retry(delay=0.01), Retry(delay=0.01), DeadLetter("bad")])
    lanes = KeyedWorkers(
        "t", 1, lambda d: next(answers), lambda w, d, o: outcomes.append((o, d.attempt))
    )
    lanes.submit(_work("a", 0))
    wait_until(lambda: outcomes, 5)
    assert outcomes == [(DeadLetter("bad"), 3)]
    lanes.join(5)
