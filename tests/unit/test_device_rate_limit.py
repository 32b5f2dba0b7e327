"""The repeat limiter: a token bucket per (call, user), driven by an injected clock."""

import pytest

from services.device.rate_limit import REPEAT_BURST, REPEATS_PER_SECOND, RepeatLimiter


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


def test_defaults_are_twenty_per_second_with_a_burst_of_forty():
    assert (REPEATS_PER_SECOND, REPEAT_BURST) == (20.0, 40.0)
    limiter = RepeatLimiter(FakeClock())
    assert (limiter.rate, limiter.burst) == (20.0, 40.0)


def test_burst_then_refused_with_the_time_to_the_next_token(clock):
    limiter = RepeatLimiter(clock, rate=20, burst=40)
    assert all(limiter.take("k").allowed for _ in range(40))
    refused = limiter.take("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.05)


def test_sustained_rate_refills_over_time(clock):
    limiter = RepeatLimiter(clock, rate=20, burst=40)
    for _ in range(40):
        limiter.take("k")
    clock.advance(0.05)  # exactly one token back
    assert limiter.take("k").allowed
    assert not limiter.take("k").allowed
    clock.advance(1.0)  # twenty more
    assert sum(limiter.take("k").allowed for _ in range(30)) == 20


def test_refill_stops_at_the_burst(clock):
    limiter = RepeatLimiter(clock, rate=20, burst=40)
    limiter.take("k")
    clock.advance(3600)
    assert limiter.tokens("k") == 40
    assert sum(limiter.take("k").allowed for _ in range(100)) == 40


def test_keys_are_independent(clock):
    limiter = RepeatLimiter(clock, rate=1, burst=2)
    assert limiter.take("call-1.ann").allowed and limiter.take("call-1.ann").allowed
    assert not limiter.take("call-1.ann").allowed
    assert limiter.take("call-1.bob").allowed
    assert limiter.take("call-2.ann").allowed
    assert limiter.tokens("unknown") == 2


def test_a_clock_stepping_back_refills_nothing(clock):
    limiter = RepeatLimiter(clock, rate=10, burst=1)
    assert limiter.take("k").allowed
    clock.advance(-5)
    assert not limiter.take("k").allowed
    clock.advance(0.1)
    assert limiter.take("k").allowed


def test_retry_after_shrinks_as_time_passes(clock):
    limiter = RepeatLimiter(clock, rate=4, burst=1)
    limiter.take("k")
    assert limiter.take("k").retry_after == pytest.approx(0.25)
    clock.advance(0.2)
    assert limiter.take("k").retry_after == pytest.approx(0.05)


def test_full_buckets_are_dropped_when_crowded_but_busy_ones_stay(clock):
    limiter = RepeatLimiter(clock, rate=1, burst=5, max_keys=10)
    for _ in range(5):
        limiter.take("storm")  # empty: needs 5 s to be full again
    for index in range(20):
        limiter.take(f"quiet-{index}")  # 4 tokens left: full again after 1 s
        clock.advance(0.1)
    assert limiter.tracked_keys() <= 11  # the full quiet buckets went
    assert limiter.tokens("storm") == pytest.approx(2.0)  # the storm's bucket was kept (not reset to 5)


def test_a_new_key_is_never_pruned_on_arrival(clock):
    limiter = RepeatLimiter(clock, rate=1, burst=2, max_keys=1)
    for index in range(5):
        assert limiter.take(f"k{index}").allowed
        assert limiter.tokens(f"k{index}") == 1  # its spent token is remembered
    assert limiter.take("k4").allowed
    assert not limiter.take("k4").allowed


@pytest.mark.parametrize("rate, burst", [(0, 10), (-1, 10), (1, 0)])
def test_rejects_nonsense_settings(rate, burst):
    with pytest.raises(ValueError):
        RepeatLimiter(FakeClock(), rate=rate, burst=burst)
