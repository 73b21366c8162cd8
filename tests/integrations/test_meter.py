"""``meter`` (context manager and decorator), the resource sampler and BudgetBlocked."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from conftest import FakeClock
from integrations.conftest import _spend
from jobbudget.config import Config
from jobbudget.domain.budget import Budget, EnforcementPolicy
from jobbudget.domain.errors import EnforcementError
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.integrations.meter import BudgetBlocked, meter
from jobbudget.integrations.resources import ResourceMeter, rss_bytes
from jobbudget.service import BudgetService
from jobbudget.storage.memory import MemoryStore


@pytest.fixture
def service(clock: FakeClock) -> Iterator[BudgetService]:
    svc = BudgetService(Config(cost_model="seed"), clock=clock, store=MemoryStore())
    policy = EnforcementPolicy(max_bypass_fraction=Decimal(1))  # emergency jobs may spend one amount more
    for tenant, amount, spent in (("blocked", "1", "1"), ("capped", "100", "10")):
        budget = Budget(tenant_id=tenant, amount=Decimal(amount), period=BudgetPeriod("monthly"))
        svc.create_budget(replace(budget, enforcement_policy=policy))
        _spend(svc, tenant, "setup", Decimal(spent))
    yield svc
    svc.close()


def _burn(seconds: float) -> None:
    cpu0 = time.process_time()
    while time.process_time() - cpu0 < seconds:
        pass


def test_resource_meter_measures_cpu_and_memory() -> None:
    base = rss_bytes() / 1048576
    cpu_before = time.process_time()
    m = ResourceMeter(interval=0.01).start()
    _burn(0.2)
    block = bytearray(50 * 1048576)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(0.5)
    usage = m.stop()
    cpu_around = time.process_time() - cpu_before
    del block
    # The process's CPU time in the meter's window: at least the burn, and at most all
    # the process used around it (other threads of a busy test process count too).
    assert 0.19 <= usage.cpu_seconds <= cpu_around
    assert usage.peak_rss_mb >= base + 40
    # at least the 50 MB held for 0.5 s, plus the process's own resident memory
    assert 25 + base * 0.7 <= usage.memory_mb_seconds <= (base + 60) * usage.wall_seconds + 1
    assert usage.wall_seconds >= 0.7


def test_meter_as_a_context_manager_stores_the_job(service: BudgetService) -> None:
    cpu_before = time.process_time()
    with meter("free", "reports", "job-1", service=service, payload_bytes=2048, job_type="report") as m:
        _burn(0.2)
    cpu_around = Decimal(str(time.process_time() - cpu_before))
    assert m.usage is not None and m.cost is not None
    stored = service.store.get_job("free", "job-1")
    assert stored is not None and stored.total_cost == m.cost.total_cost
    cpu = m.cost.cost_breakdown.cpu_cost / service.get_cost_model().cpu_time_weight
    assert Decimal("0.19") <= cpu <= cpu_around + Decimal("0.0001")  # the burn; the cost's rounding
    assert m.cost.cost_breakdown.payload_cost == Decimal(2) * service.get_cost_model().payload_weight
    assert m.cost.cost_breakdown.memory_cost > 0


def test_meter_as_a_decorator_makes_one_job_per_call(service: BudgetService, monkeypatch: Any) -> None:
    seen: list[str] = []
    original = service.process_job_cost

    def spy(metrics: Any, **kw: Any) -> Any:
        seen.append(metrics.job_id)
        return original(metrics, **kw)

    monkeypatch.setattr(service, "process_job_cost", spy)

    @meter("free", "q", service=service)
    def job(x: int) -> int:
        return x * 2

    assert [job(1), job(2), job(3)] == [2, 4, 6]
    assert len(set(seen)) == 3


def test_a_failing_block_is_metered_and_the_error_propagates(service: BudgetService) -> None:
    m = meter("free", "q", "boom", service=service)
    with pytest.raises(ZeroDivisionError), m:
        _ = 1 / 0
    assert service.store.get_job("free", "boom") is not None


def test_admit_refuses_a_blocked_tenant_before_the_block_runs(service: BudgetService) -> None:
    ran = []
    with pytest.raises(BudgetBlocked) as info, meter("blocked", "q", "b1", service=service, admit=True):
        ran.append(1)
    assert ran == []
    assert service.store.get_job("blocked", "b1") is None
    assert isinstance(info.value, EnforcementError)
    assert info.value.action == "block" and info.value.enforcement.type == "block"
    assert info.value.tenant_id == "blocked"
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, BudgetBlocked) and again.enforcement == info.value.enforcement


def test_admit_reserves_and_settles(service: BudgetService) -> None:
    with meter("capped", "q", "c1", service=service, admit=True, estimated_cost=Decimal("0.5")) as m:
        pass
    assert m.action is not None and m.action.type == "allow"
    if hasattr(service, "admit"):
        assert m.reservation_id is not None
    assert service.store.get_job("capped", "c1") is not None


def test_emergency_priority_passes_with_admit(service: BudgetService) -> None:
    with meter("blocked", "q", "e1", service=service, admit=True, priority=9) as m:
        pass
    assert m.action is not None and m.action.bypass
    assert service.store.get_job("blocked", "e1") is not None


def test_emergency_priority_stops_at_the_bypass_allowance(service: BudgetService) -> None:
    budget = service.list_budgets("blocked")[0]
    policy = replace(budget.enforcement_policy, max_bypass_fraction=Decimal(0))
    service.update_budget(replace(budget, enforcement_policy=policy))
    ran = False
    with pytest.raises(BudgetBlocked) as blocked, meter("blocked", "q", "e2", service=service, admit=True, priority=9):
        ran = True
    assert not ran and "bypass allowance" in str(blocked.value)
    assert service.store.get_job("blocked", "e2") is None
