"""BudgetService.generate_report on memory, SQLite and PostgreSQL, driven by a FakeClock:
exact totals from the stored jobs, tenant isolation, unknown tenants, and when the
forecast is asked for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, JobMetrics, NotFoundError
from jobbudget.domain.cost import JobCost
from test_reporting import fake_forecast

Factory = Callable[..., BudgetService]
JAN = BudgetPeriod("monthly", start_date=date(2024, 1, 1), end_date=date(2024, 1, 31))


def jobs_for(tenant: str, queues: tuple[str, ...], days: range, per_day: int = 3) -> list[JobMetrics]:
    out = []
    for d in days:
        for qi, queue in enumerate(queues):
            for k in range(per_day):
                out.append(
                    JobMetrics(
                        job_id=f"{tenant}-{queue}-{d}-{k}",
                        tenant_id=tenant,
                        queue_name=queue,
                        cpu_time=Decimal(f"{10 * (qi + 1) + k}.125"),
                        memory_mb_seconds=Decimal(1000 * (d % 5 + 1)),
                        payload_bytes=Decimal(333 * k),
                        redis_ops=Decimal(d),
                        network_bytes=Decimal(7777),
                        timestamp=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=d, hours=k * 7),
                    )
                )
    return out


def ingest(service: BudgetService, jobs: list[JobMetrics]) -> list[JobCost]:
    return service.process_job_costs(jobs)


@pytest.fixture
def service(service_factory: Factory) -> BudgetService:
    return service_factory()


def test_report_adds_up_the_stored_jobs_exactly(service: BudgetService) -> None:
    # the clock is 2024-01-15 12:00 UTC; jobs from Jan 1 to Jan 14 (and one in December)
    costs = ingest(service, jobs_for("acme", ("ml", "etl", "web"), range(0, 14)))
    december = JobMetrics("old", "acme", "ml", 5, 5, 5, 5, 5, timestamp=datetime(2023, 12, 28, tzinfo=UTC))
    ingest(service, [december])
    service.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
    service.create_budget(Budget(tenant_id="acme", queue_name="ml", amount=Decimal(20), period=BudgetPeriod("monthly")))
    service.get_forecast = lambda *a, **k: fake_forecast(period_end=date(2024, 1, 31))  # type: ignore[method-assign]

    report = service.generate_report("acme", BudgetPeriod("monthly"))  # resolved by the clock: January

    assert report.period == JAN and report.generated_at == datetime(2024, 1, 15, 12, tzinfo=UTC)
    assert report.total_spend == sum((c.total_cost for c in costs), Decimal(0))
    assert report.total_jobs == len(costs)
    expected = {q: sum((c.total_cost for c in costs if c.queue_name == q), Decimal(0)) for q in ("ml", "etl", "web")}
    assert dict(report.queue_breakdown) == expected
    assert [q for q, _ in report.queue_breakdown] == sorted(expected, key=lambda q: -expected[q])
    assert sum(c for _, c in report.queue_breakdown) == report.total_spend == sum(d.total for d in report.daily)
    assert report.component_breakdown.total == report.total_spend
    assert [d.date for d in report.daily] == [date(2024, 1, n) for n in range(1, 16)]  # zero-filled to today
    assert report.daily[-1].total == 0 and report.daily[0].jobs == 9
    assert (report.budget_amount, report.budget_basis) == (Decimal(100), "tenant")
    lines = {b.scope: b for b in report.budgets}
    assert lines["(all queues)"].spend == report.total_spend and lines["ml"].spend == expected["ml"]
    assert lines["ml"].action in ("allow", "warn", "throttle", "block")
    assert report.forecast == fake_forecast(period_end=date(2024, 1, 31))


def test_other_tenants_never_appear(service: BudgetService) -> None:
    mine = ingest(service, jobs_for("acme", ("ml",), range(0, 10)))
    ingest(service, jobs_for("globex", ("ml", "secret-queue"), range(0, 10)))
    report = service.generate_report("acme", JAN)
    assert report.total_spend == sum((c.total_cost for c in mine), Decimal(0))
    assert [q for q, _ in report.queue_breakdown] == ["ml"]
    assert all(c.queue_name == "ml" for d in report.daily for c in d.queues)
    assert report.total_jobs == len(mine)


def test_unknown_tenant_is_not_found(service: BudgetService) -> None:
    ingest(service, jobs_for("acme", ("ml",), range(0, 2)))
    with pytest.raises(NotFoundError) as caught:
        service.generate_report("nobody", JAN)
    assert caught.value.code == "TENANT_NOT_FOUND" and caught.value.key == "nobody"


def test_a_known_tenant_with_nothing_in_the_period_gets_an_empty_report(service: BudgetService) -> None:
    ingest(service, [JobMetrics("j", "acme", "ml", 1, 0, 0, 0, 0, timestamp=datetime(2023, 6, 1, tzinfo=UTC))])
    budget = service.create_budget(Budget(tenant_id="idle", amount=Decimal(5), period=BudgetPeriod("monthly")))
    service.deactivate_budget(str(budget.id))
    for tenant in ("acme", "idle"):
        report = service.generate_report(tenant, JAN)
        assert report.total_spend == 0 and report.top_drivers == () and report.budgets == ()
        assert len(report.daily) == 15 and report.recommendations == ()


def test_a_past_period_covers_every_day_and_has_no_forecast(service: BudgetService, clock: FakeClock) -> None:
    ingest(service, jobs_for("acme", ("ml",), range(0, 3)))
    service.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
    clock.advance(days=40)  # late February

    def no_forecast(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no forecast for a past period")

    service.get_forecast = no_forecast  # type: ignore[method-assign]
    report = service.generate_report("acme", JAN)
    assert len(report.daily) == 31 and report.forecast is None and report.total_jobs == 9


def test_forecast_only_with_a_tenant_wide_budget_and_not_found_means_none(service: BudgetService) -> None:
    ingest(service, jobs_for("acme", ("ml",), range(0, 3)))
    calls: list[str] = []

    def missing(tenant_id: str, queue_name: str = "") -> Any:
        calls.append(tenant_id)
        raise NotFoundError("budget", tenant_id)

    service.get_forecast = missing  # type: ignore[method-assign]
    service.create_budget(Budget(tenant_id="acme", queue_name="ml", amount=Decimal(9), period=BudgetPeriod("monthly")))
    assert service.generate_report("acme", JAN).forecast is None and calls == []
    service.create_budget(Budget(tenant_id="acme", amount=Decimal(9), period=BudgetPeriod("monthly")))
    assert service.generate_report("acme", JAN).forecast is None and calls == ["acme"]


def test_the_real_forecast_when_it_is_available(service: BudgetService) -> None:
    pytest.importorskip("jobbudget.analytics.forecasts")
    ingest(service, jobs_for("acme", ("ml", "etl"), range(0, 14)))
    service.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
    report = service.generate_report("acme", JAN)
    assert report.forecast is not None and report.forecast.period_end == date(2024, 1, 31)
