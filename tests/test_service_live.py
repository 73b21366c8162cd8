"""What the live WebSocket asks the service (``core/live.py``): a version that moves
only when a budget, period or spend may have changed, in this process or another one,
and per-budget marks that change only for the budgets concerned."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, JobMetrics
from jobbudget.core.live import UNTRACKED

ServiceFactory = Callable[..., BudgetService]
ZERO = Decimal(0)


def a_job(job_id: str, tenant: str, cpu: int = 10) -> JobMetrics:
    return JobMetrics(job_id, tenant, "q", Decimal(cpu), ZERO, ZERO, ZERO, ZERO)


def monthly(tenant: str) -> Budget:
    return Budget(tenant_id=tenant, amount=Decimal(1000), period=BudgetPeriod("monthly"))


@pytest.mark.parametrize("shared_state", ["memory", "database"])
def test_marks_change_only_for_the_budget_whose_spend_changed(
    service_factory: ServiceFactory, clock: FakeClock, shared_state: str
) -> None:
    service = service_factory(shared_state=shared_state)
    acme, globex = service.create_budget(monthly("acme")), service.create_budget(monthly("globex"))
    assert acme.id is not None and globex.id is not None
    version = service.live_version()
    assert service.live_version() == version  # nothing happened
    before = service.live_marks([acme.id, globex.id, "no-such-budget"])
    assert before.marks["no-such-budget"] == UNTRACKED
    assert before.wake_at == datetime(2024, 2, 1, tzinfo=UTC)  # the end of January
    cost = service.process_job_cost(a_job("j1", "acme")).total_cost
    assert service.live_version() != version
    after = service.live_marks([acme.id, globex.id])
    assert after.marks[globex.id] == before.marks[globex.id]
    assert after.marks[acme.id].spend == cost != before.marks[acme.id].spend
    assert service.get_budget_status(acme.id).current_spend == cost


def test_a_period_roll_changes_the_mark(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory()
    budget = service.create_budget(monthly("acme"))
    assert budget.id is not None
    service.process_job_cost(a_job("j1", "acme"))
    january = service.live_marks([budget.id]).marks[budget.id]
    clock.now = datetime(2024, 2, 1, 0, 0, 1, tzinfo=UTC)
    february = service.live_marks([budget.id]).marks[budget.id]
    assert (january.period_start, february.period_start) == (date(2024, 1, 1), date(2024, 2, 1))
    assert january.spend > 0 and february.spend == 0


def test_another_process_commit_moves_the_version_and_the_mark(service_factory: ServiceFactory) -> None:
    writer = service_factory()
    budget = writer.create_budget(monthly("acme"))
    assert budget.id is not None
    watcher = service_factory()  # another process on the same database, its budget loaded
    version = watcher.live_version()
    cost = writer.process_job_cost(a_job("j1", "acme")).total_cost
    deadline = time.monotonic() + 2  # PostgreSQL: the notice comes through a listener thread
    while watcher.live_version() == version:
        assert time.monotonic() < deadline, "the other process's commit was not seen"
        time.sleep(0.01)
    assert watcher.live_marks([budget.id]).marks[budget.id].spend == cost
