"""Forecast accuracy as it happened: mid-period snapshots and their outcomes, through
the service on every store back-end, driven by the FakeClock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics
from jobbudget.config import Config
from jobbudget.service import BudgetService
from jobbudget.storage.memory import MemoryStore

ServiceFactory = Callable[..., BudgetService]
NO_BASE = {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}  # a job costs exactly cpu_time × 0.0001


def job(job_id: str, cost: int, day: date) -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id="acme",
        queue_name="q1",
        cpu_time=Decimal(cost) * 10_000,
        memory_mb_seconds=Decimal(0),
        payload_bytes=Decimal(0),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
        timestamp=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
    )


def test_mid_period_snapshot_is_recorded_once_and_closed_with_real_spend(
    service_factory: ServiceFactory, clock: FakeClock
) -> None:
    clock.now = datetime(2023, 12, 1, tzinfo=UTC)
    service = service_factory(**NO_BASE)
    budget = service.create_budget(
        Budget(tenant_id="acme", amount=Decimal(1000), period=BudgetPeriod("monthly", start_date=date(2023, 12, 1)))
    )
    day = date(2023, 12, 1)
    spent_in = {12: Decimal(0), 1: Decimal(0)}
    while day < date(2024, 2, 1):
        clock.now = datetime(day.year, day.month, day.day, 23, tzinfo=UTC)
        cost = 20 + (10 if day.weekday() < 5 else 0)
        service.process_job_cost(job(f"j-{day}", cost, day))
        spent_in[day.month] += cost
        run = service.record_forecast_snapshots()
        if day == date(2023, 12, 16) or day == date(2024, 1, 16):  # the midpoints
            assert run.created == 1, day
        else:
            assert run.created == 0, day
        if day == date(2024, 1, 1):  # December has closed
            assert run.closed == 1
        day += timedelta(days=1)
    snapshots = service.list_forecast_snapshots(budget_id=budget.id)
    assert [s.period_start for s in snapshots] == [date(2024, 1, 1), date(2023, 12, 1)]
    january, december = snapshots
    assert december.as_of == date(2023, 12, 16) and december.actual_spend == spent_in[12]
    assert december.error is not None and abs(december.error) < Decimal("0.2")
    assert december.lower_80 <= december.predicted_spend <= december.upper_80
    assert january.actual_spend is None and january.error is None  # still open
    # January closes on the first pass after it ends
    clock.now = datetime(2024, 2, 1, 1, tzinfo=UTC)
    assert service.record_forecast_snapshots().closed == 1
    (closed_january,) = service.list_forecast_snapshots(budget_id=budget.id, closed=True, limit=1)
    assert closed_january.actual_spend == spent_in[1]
    # a mid-period forecast only uses the data before its midpoint: recording it late gives the same
    assert january.as_of == date(2024, 1, 16)


def test_snapshot_recorded_late_uses_only_data_before_the_midpoint(clock: FakeClock) -> None:
    """A service that was down at the midpoint records the same forecast later: a
    spike after the midpoint does not leak into it."""

    def snapshot_with(*, spike: bool, record_on: int) -> object:
        clock.now = datetime(2024, 1, 1, tzinfo=UTC)
        service = BudgetService(Config(**NO_BASE), clock=clock, store=MemoryStore())  # type: ignore[arg-type]
        with service:
            budget = service.create_budget(
                Budget(tenant_id="acme", amount=Decimal(1000), period=BudgetPeriod("monthly"))
            )
            for d in range(1, 21):
                clock.now = datetime(2024, 1, d, 23, tzinfo=UTC)
                service.process_job_cost(job(f"j-{d}", 25 + d % 3, date(2024, 1, d)))
            if spike:
                service.process_job_cost(job("spike", 5000, date(2024, 1, 20)))
            clock.now = datetime(2024, 1, record_on, 23, tzinfo=UTC)
            assert service.record_forecast_snapshots().created == 1
            (snapshot,) = service.list_forecast_snapshots(budget_id=budget.id)
            return replace(snapshot, budget_id="", created_at=clock.now.replace(day=1))

    assert snapshot_with(spike=True, record_on=20) == snapshot_with(spike=False, record_on=16)
