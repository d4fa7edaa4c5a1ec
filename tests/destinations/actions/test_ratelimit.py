"""The token bucket behind ``rate_limit`` and the pause behind Retry-After, on an injected clock."""

from __future__ import annotations

import pytest

from collector.destinations.actions.ratelimit import Pause, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_one_second_then_one_request_per_interval():
    clock = Clock()
    bucket = TokenBucket(4, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == [0, 0, 0, 0]
    # Empty: the next callers are given successive slots, a quarter second apart.
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.25, 0.5, 0.75])


def test_tokens_come_back_with_time_up_to_the_burst():
    clock = Clock()
    bucket = TokenBucket(2, clock=clock)
    for _ in range(2):
        bucket.reserve()
    clock.now += 0.5
    assert bucket.reserve() == 0  # one token came back
    assert bucket.reserve() == pytest.approx(0.5)
    clock.now += 100  # long idle: the bucket holds no more than its burst
    assert [bucket.reserve() for _ in range(2)] == [0, 0]
    assert bucket.reserve() > 0


def test_a_rate_below_one_still_lets_one_request_through():
    clock = Clock()
    bucket = TokenBucket(0.5, clock=clock)
    assert bucket.reserve() == 0
    assert bucket.reserve() == pytest.approx(2.0)


def test_the_average_rate_holds_over_many_requests():
    clock = Clock()
    bucket = TokenBucket(10, clock=clock)
    waits = [bucket.reserve() for _ in range(110)]
    # 10 at once, then 100 more take 10 s: the last one waits 10 s.
    assert waits[-1] == pytest.approx(10.0)


async def test_acquire_sleeps_for_its_reservation():
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    bucket = TokenBucket(1, clock=clock, sleep=sleep)
    await bucket.acquire()
    await bucket.acquire()
    assert slept == [pytest.approx(1.0)]


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_a_pause_only_grows():
    clock = Clock()
    pause = Pause(clock)
    assert pause.remaining() == 0
    pause.extend(5)
    pause.extend(2)  # a shorter Retry-After does not shorten the pause
    assert pause.remaining() == 5
    clock.now += 4
    assert pause.remaining() == 1
    clock.now += 2
    assert pause.remaining() == 0
