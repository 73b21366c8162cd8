"""BudgetAwareRateLimiter (in-process and Redis buckets) and the Pacer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from conftest import FakeClock
from integrations.conftest import _spend, require_redis
from jobbudget.config import Config
from jobbudget.domain.budget import Budget
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.integrations.ratelimit import BudgetAwareRateLimiter, Pacer
from jobbudget.service import BudgetService
from jobbudget.storage.memory import MemoryStore


class Seconds:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(clock: FakeClock) -> Iterator[BudgetService]:
    svc = BudgetService(Config(cost_model="seed"), clock=clock, store=MemoryStore())
    for tenant, spent in (("blocked", "100"), ("throttled", "95")):
        svc.create_budget(Budget(tenant_id=tenant, amount=Decimal(100), period=BudgetPeriod("monthly")))
        _spend(svc, tenant, "setup", Decimal(spent))
    yield svc
    svc.close()


@pytest.fixture(params=["memory", "redis"])
def limiter_factory(request: pytest.FixtureRequest, service: BudgetService) -> Iterator[Any]:
    made: list[tuple[Any, str]] = []
    client = require_redis() if request.param == "redis" else None

    def make(rate: float, burst: float, clock: Seconds) -> BudgetAwareRateLimiter:
        prefix = f"jbit-rl-{uuid.uuid4().hex[:8]}:"
        made.append((client, prefix))
        return BudgetAwareRateLimiter(service, rate=rate, burst=burst, redis=client, prefix=prefix, clock=clock)

    yield make
    if client is not None:
        for _, prefix in made:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)
        client.close()


def _count(limiter: BudgetAwareRateLimiter, clock: Seconds, tenant: str, seconds: float, step: float = 0.01) -> int:
    allowed = 0
    for _ in range(round(seconds / step)):
        clock.now += step
        allowed += limiter.allow(tenant, "q")
    return allowed


def test_full_rate_without_a_budget(limiter_factory: Any) -> None:
    clock = Seconds()
    limiter = limiter_factory(10, 1, clock)
    assert 99 <= _count(limiter, clock, "free", 10) <= 101


def test_throttle_factor_halves_the_rate(limiter_factory: Any) -> None:
    clock = Seconds()
    limiter = limiter_factory(10, 1, clock)
    full = _count(limiter, clock, "free", 10)
    half = _count(limiter, clock, "throttled", 10)
    assert 49 <= half <= 51
    assert abs(half / full - 0.5) < 0.03
    decision = limiter.check("throttled", "q")
    assert decision.action.type == "throttle" and decision.rate == 5.0
    if not decision.allowed:
        assert decision.retry_after is not None and 0 < decision.retry_after <= 0.2


def test_block_refuses_without_spending_tokens(limiter_factory: Any) -> None:
    clock = Seconds()
    limiter = limiter_factory(10, 5, clock)
    assert _count(limiter, clock, "blocked", 2) == 0
    decision = limiter.check("blocked", "q")
    assert not decision.allowed and decision.retry_after is None and decision.action.type == "block"
    assert limiter.check("blocked", "q", priority=9).allowed  # the emergency bypass


def test_burst_then_refill(limiter_factory: Any) -> None:
    clock = Seconds()
    limiter = limiter_factory(2, 3, clock)
    assert [limiter.allow("free", "q") for _ in range(4)] == [True, True, True, False]
    assert limiter.check("free", "q").retry_after == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.allow("free", "q")
    assert limiter.allow("free", "other")  # a bucket per queue
    limiter.reset("free", "q")
    assert [limiter.allow("free", "q") for _ in range(3)] == [True, True, True]


def test_redis_buckets_are_shared(service: BudgetService) -> None:
    client = require_redis()
    prefix = f"jbit-rl-{uuid.uuid4().hex[:8]}:"
    clock = Seconds()
    a = BudgetAwareRateLimiter(service, rate=1, burst=2, redis=client, prefix=prefix, clock=clock)
    b = BudgetAwareRateLimiter(service, rate=1, burst=2, redis=client, prefix=prefix, clock=clock)
    try:
        assert [a.allow("free", "q"), b.allow("free", "q"), a.allow("free", "q")] == [True, True, False]
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def test_pacer_spaces_a_throttled_key_by_d_over_f() -> None:
    clock = Seconds()
    pacer = Pacer(clock=clock)
    key = ("t", "q")
    assert pacer.defer(key, 0.5) == 0  # nothing ran yet
    clock.now += 1.0
    pacer.finished(key, 0.5, 1.0)  # ran 1 s: the next may start 1 s after it ended
    assert pacer.defer(key, 0.5) == pytest.approx(1.0)  # slot at +1, reserved
    assert pacer.defer(key, 0.5) == pytest.approx(3.0)  # the next slot d/f = 2 s later
    assert pacer.defer(("other", "q"), 0.5) == 0
    assert pacer.defer(key, 1.0) == 0  # not throttled: never paced
    clock.now += 10
    assert pacer.defer(key, 0.25) == 0
