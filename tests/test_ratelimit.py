"""The sliding-window limit of the channel test endpoint (``jobbudget.api.ratelimit``):
per key and per budget, nothing counted when refused, the wait until room again."""

from __future__ import annotations

import pytest

from jobbudget.api.ratelimit import WindowLimiter
from jobbudget.domain.errors import RateLimitedError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_per_key_and_per_budget() -> None:
    clock = Clock()
    limiter = WindowLimiter(3, what="channel tests", clock=clock)
    for _ in range(3):
        limiter.take({"API key": "k1", "budget": "b1"})
        clock.now += 10
    with pytest.raises(RateLimitedError) as full:
        limiter.take({"API key": "k1", "budget": "b2"})
    assert full.value.code == "RATE_LIMITED" and full.value.retry_after == 30  # the first use leaves at 1060
    assert str(full.value) == "too many channel tests: at most 3 a minute per API key; retry in 30 s"
    with pytest.raises(RateLimitedError, match="per budget"):
        limiter.take({"API key": "k2", "budget": "b1"})
    limiter.take({"API key": "k2", "budget": "b2"})  # the refusals above counted nothing
    clock.now = 1060.0  # the first use has left the window
    limiter.take({"API key": "k1", "budget": "b1"})
    with pytest.raises(RateLimitedError) as again:
        limiter.take({"API key": "k1", "budget": "b3"})
    assert again.value.retry_after == 10


def test_a_wait_is_at_least_a_second_and_bad_limits_are_refused() -> None:
    clock = Clock()
    limiter = WindowLimiter(1, window=0.5, clock=clock)
    limiter.take({"key": "k"})
    with pytest.raises(RateLimitedError) as full:
        limiter.take({"key": "k"})
    assert full.value.retry_after == 1 and "at most 1 per 0.5 s per key" in str(full.value)
    for limit, window in ((0, 60.0), (1, 0.0)):
        with pytest.raises(ValueError):
            WindowLimiter(limit, window=window)
