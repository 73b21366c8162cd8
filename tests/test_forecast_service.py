"""Forecasts through the service on every store back-end (memory, SQLite, PostgreSQL),
driven by the FakeClock (2024-01-15 12:00 UTC)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics, NotFoundError, error_code
from jobbudget.forecasting import BacktestResult, Forecast
from jobbudget.service import BudgetService

ServiceFactory = Callable[..., BudgetService]
NO_BASE = {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}  # a job costs exactly cpu_time × 0.0001
TODAY = date(2024, 1, 15)


def job(
    job_id: str, cost: Decimal | int, day: date, *, tenant: str = "acme", queue: str = "q1", hour: int = 10
) -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id=tenant,
        queue_name=queue,
        cpu_time=Decimal(cost) * 10_000,
        memory_mb_seconds=Decimal(0),
        payload_bytes=Decimal(0),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
        timestamp=datetime(day.year, day.month, day.day, hour, tzinfo=UTC),
    )


def daily_jobs(days: int, cost: int, *, queue: str = "q1", tenant: str = "acme") -> list[JobMetrics]:
    """One job of ``cost`` a day on the ``days`` days before today."""
    return [
        job(f"{queue}-{i}", cost, TODAY - timedelta(days=i), tenant=tenant, queue=queue) for i in range(1, days + 1)
    ]


def monthly(tenant: str = "acme", queue: str = "", amount: str = "5000", timezone: str = "UTC") -> Budget:
    return Budget(
        tenant_id=tenant, queue_name=queue, amount=Decimal(amount), period=BudgetPeriod("monthly", timezone=timezone)
    )


@pytest.fixture
def service(service_factory: ServiceFactory) -> BudgetService:
    return service_factory(**NO_BASE)


def test_no_budget_for_the_scope_is_not_found(service: BudgetService) -> None:
    with pytest.raises(NotFoundError) as missing:
        service.get_forecast("acme")
    assert error_code(missing.value) == "BUDGET_NOT_FOUND"
    assert str(missing.value) == "budget not found: 'acme'; no budget covers all its queues; acme has no active budget"
    service.create_budget(monthly(queue="q1"))
    with pytest.raises(NotFoundError) as missing:  # a queue budget is not the tenant-wide one
        service.get_forecast("acme")
    assert str(missing.value).endswith("budgets of acme: acme/q1")  # the budgets there are
    with pytest.raises(NotFoundError):
        service.get_forecast("acme", "q2")
    assert isinstance(service.get_forecast("acme", "q1"), Forecast)


def test_queue_forecast_projects_the_rest_of_the_month(service: BudgetService) -> None:
    service.process_job_costs(daily_jobs(60, 100))
    service.create_budget(monthly(queue="q1", amount="5000"))
    f = service.get_forecast("acme", "q1")
    assert f.as_of == TODAY and f.period_end == date(2024, 1, 31)
    assert f.current_spend == Decimal(1400)  # January 1..14
    # the clock says 12:00: half of today is still to come, then 16 whole days
    assert f.predicted_spend == Decimal(1400 + 50 + 16 * 100)
    assert f.lower_80 <= f.predicted_spend <= f.upper_80 and f.lower_95 >= Decimal(1400)
    assert f.days_until_overrun is None and f.recommendation.startswith("On track")
    assert f.budget_amount == Decimal(5000) and not f.method.startswith("run-rate")


def test_tenant_wide_forecast_sums_the_queues(service: BudgetService) -> None:
    service.process_job_costs(daily_jobs(40, 60, queue="q1") + daily_jobs(40, 40, queue="q2"))
    service.process_job_costs(daily_jobs(40, 1000, tenant="other"))  # another tenant does not count
    service.create_budget(monthly(amount="2500"))
    service.create_budget(monthly(queue="q1", amount="2500"))
    wide = service.get_forecast("acme")
    assert wide.current_spend == Decimal(1400) and wide.predicted_spend == Decimal(1400 + 50 + 16 * 100)
    assert wide.days_until_overrun == 11  # 1,450 tonight + 100/day passes 2,500 on January 26
    assert "over by 550.00" in wide.recommendation
    q1 = service.get_forecast("acme", "q1")
    assert q1.predicted_spend == Decimal(14 * 60 + 30 + 16 * 60) and q1.days_until_overrun is None


def test_partial_spend_today_counts_once(service: BudgetService) -> None:
    service.process_job_costs(daily_jobs(60, 100))
    service.process_job_costs([job("today", 500, TODAY, hour=9)])  # before the clock's 12:00
    budget = service.create_budget(monthly(queue="q1"))
    assert budget.id is not None
    assert service.get_budget_status(budget.id).current_spend == Decimal(1900)
    f = service.get_forecast("acme", "q1")
    assert f.current_spend == Decimal(1400)  # before today
    assert f.daily_projection[0] == (TODAY, Decimal(550))  # today: what was seen and half a day to come
    assert f.predicted_spend == Decimal(1400 + 550 + 16 * 100)
    assert f.lower_95 >= Decimal(1900)


def test_a_partial_day_adds_what_the_rest_of_the_day_should_bring(service: BudgetService) -> None:
    service.process_job_costs(daily_jobs(60, 100))
    service.process_job_costs([job("today", 30, TODAY, hour=9)])
    service.create_budget(monthly(queue="q1"))
    f = service.get_forecast("acme", "q1")
    assert f.current_spend == Decimal(1400) and f.predicted_spend == Decimal(1400 + 30 + 50 + 16 * 100)


def test_today_is_the_budgets_local_date(service: BudgetService) -> None:
    # 2024-01-15 12:00 UTC is 2024-01-16 01:00 in Auckland (UTC+13).
    service.process_job_costs(daily_jobs(30, 100))
    service.create_budget(monthly(queue="q1", timezone="Pacific/Auckland"))
    f = service.get_forecast("acme", "q1")
    assert f.as_of == date(2024, 1, 16) and f.period_end == date(2024, 1, 31)
    assert f.predicted_spend > f.current_spend > 0


def test_forecast_accuracy_backtests_the_scopes_own_history(service: BudgetService) -> None:
    service.process_job_costs(daily_jobs(120, 100) + daily_jobs(120, 50, queue="q2"))
    wide = service.forecast_accuracy("acme")
    assert isinstance(wide, BacktestResult)
    assert (wide.months, wide.forecasts) == (3, 15)  # October to December 2023
    assert wide.mape == pytest.approx(0, abs=1e-9) and wide.coverage_95 == 1
    assert {p.actual for p in wide.points} == {Decimal(150 * 31), Decimal(150 * 30)}
    q2 = service.forecast_accuracy("acme", "q2")
    assert {p.actual for p in q2.points} == {Decimal(50 * 31), Decimal(50 * 30)}
    assert service.forecast_accuracy("nobody").forecasts == 0


def test_at_the_last_second_of_a_period_the_forecast_is_what_was_spent(
    service: BudgetService, clock: FakeClock
) -> None:
    """The demo's report at 2013-03-31T23:59:59 forecast a month that was over as if a
    whole day were still to come."""
    service.process_job_costs(daily_jobs(60, 100))
    service.create_budget(monthly(queue="q1", amount="5000"))
    clock.now = datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    f = service.get_forecast("acme", "q1")
    assert f.predicted_spend - f.current_spend < Decimal("0.01")
