"""Alert events exactly once per (budget, type, period), written with the spend that
caused them, on every store back-end (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics, NotFoundError, NotificationChannel, ValidationError
from jobbudget.service import BudgetService

ServiceFactory = Callable[..., BudgetService]
NO_BASE = {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}  # a job costs exactly cpu_time × 0.0001
HOOK = NotificationChannel(
    type="webhook",
    target="http://127.0.0.1:9/budget",
    events=("warning", "throttle", "block", "forecast_overrun", "reset", "bypass"),
)
MAIL = NotificationChannel(type="email", target="ops@example.com", events=("block",))  # SMTP: localhost


def costing(job_id: str, cost: str, *, queue: str = "q1", ts: datetime | None = None) -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id="acme",
        queue_name=queue,
        cpu_time=Decimal(cost) * 10_000,
        memory_mb_seconds=Decimal(0),
        payload_bytes=Decimal(0),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
        timestamp=ts,
    )


def budget(amount: str = "100", **kw: object) -> Budget:
    values: dict[str, object] = {"period": BudgetPeriod("monthly"), "notifications": (HOOK, MAIL), **kw}
    return Budget(tenant_id="acme", amount=Decimal(amount), **values)  # type: ignore[arg-type]


def kinds(service: BudgetService) -> list[str]:
    return sorted(a.event.type for a in service.list_alerts())


@pytest.fixture
def service(service_factory: ServiceFactory) -> BudgetService:
    return service_factory(**NO_BASE)


def test_each_threshold_fires_once_and_escalations_always_fire(service: BudgetService) -> None:
    created = service.create_budget(budget())
    service.process_job_cost(costing("a", "74.999999999"))
    assert kinds(service) == []
    service.process_job_cost(costing("b", "0.000000001"))  # exactly 75 %
    assert kinds(service) == ["warning"]
    service.process_job_cost(costing("c", "5"))  # 80 %: still only the warning
    assert kinds(service) == ["warning"]
    service.process_job_cost(costing("d", "10"))  # 90 %
    service.process_job_cost(costing("e", "10"))  # 100 %
    service.process_job_cost(costing("f", "10"))  # 110 %: nothing new
    alerts = service.list_alerts()
    assert sorted(a.event.type for a in alerts) == ["block", "throttle", "warning"]
    block = next(a for a in alerts if a.event.type == "block")
    assert block.event.budget_id == created.id and block.event.current_spend == Decimal(100)
    assert block.event.utilization == Decimal(1) and block.event.period_start == date(2024, 1, 1)
    assert block.event.period_end == date(2024, 1, 31)
    assert "new jobs are refused" in block.event.message
    # one delivery per subscribed channel: the webhook everywhere, the e-mail for block only
    assert sorted(d.channel_type for d in block.deliveries) == ["email", "webhook"]
    warning = next(a for a in alerts if a.event.type == "warning")
    assert [d.channel_type for d in warning.deliveries] == ["webhook"]
    assert all(d.status == "pending" and d.attempts == 0 for a in alerts for d in a.deliveries)
    assert all("/budget" not in d.target for a in alerts for d in a.deliveries)  # redacted


def test_a_jump_past_every_threshold_fires_all_three(service: BudgetService) -> None:
    service.create_budget(budget())
    service.process_job_cost(costing("big", "150"))
    assert kinds(service) == ["block", "throttle", "warning"]


def test_redelivered_jobs_fire_nothing_new(service: BudgetService) -> None:
    service.create_budget(budget())
    service.process_job_costs([costing("a", "80"), costing("a", "80")])
    service.process_job_cost(costing("a", "80"))
    assert kinds(service) == ["warning"]


def test_processes_sharing_the_database_fire_once(service_factory: ServiceFactory) -> None:
    first = service_factory(**NO_BASE)
    first.create_budget(budget())
    second = service_factory(**NO_BASE)  # started before anything fired
    first.process_job_cost(costing("a", "76"))
    second.process_job_cost(costing("b", "1"))  # 77 % in the ledger: its warning already exists
    assert kinds(first) == kinds(second) == ["warning"]
    second.process_job_cost(costing("c", "20"))  # 97 %
    first.process_job_cost(costing("d", "1"))
    assert kinds(first) == ["throttle", "warning"]


def test_a_new_period_starts_fresh(service: BudgetService, clock: FakeClock) -> None:
    service.create_budget(budget())
    service.process_job_cost(costing("jan", "80"))
    clock.now = datetime(2024, 2, 10, tzinfo=UTC)
    assert service.check_budget_compliance("acme", "q1").type == "allow"
    service.process_job_cost(costing("feb", "80"))
    warnings = [a for a in service.list_alerts() if a.event.type == "warning"]
    assert sorted(a.event.period_start for a in warnings) == [date(2024, 1, 1), date(2024, 2, 1)]


def test_queue_budgets_fire_on_their_own_spend_only(service: BudgetService) -> None:
    service.create_budget(budget(queue_name="q2"))
    service.process_job_cost(costing("other-queue", "90", queue="q1"))
    assert kinds(service) == []
    service.process_job_cost(costing("mine", "90", queue="q2"))
    assert kinds(service) == ["throttle", "warning"]


def test_bypass_alert_once_per_period(service: BudgetService) -> None:
    service.create_budget(budget())
    service.process_job_cost(costing("full", "105"))  # within the bypass allowance (10 %)
    for _ in range(3):
        assert service.check_budget_compliance("acme", "q1", priority=9).bypass
    service.flush()
    service.check_budget_compliance("acme", "q1", priority=10)
    service.flush()
    assert kinds(service).count("bypass") == 1


def test_reset_when_a_recurring_budget_enters_a_new_period(service: BudgetService, clock: FakeClock) -> None:
    service.create_budget(budget())
    service.record_forecast_snapshots()  # housekeeping runs; nothing to reset in the first period
    service.core.planner.lifecycle()
    assert "reset" not in kinds(service)
    clock.now = datetime(2024, 2, 1, 0, 5, tzinfo=UTC)
    service.core.planner.lifecycle()
    service.core.planner.lifecycle()
    resets = [a for a in service.list_alerts() if a.event.type == "reset"]
    assert len(resets) == 1 and resets[0].event.period_start == date(2024, 2, 1)


def test_forecast_overrun_when_the_forecast_ends_over_budget(service: BudgetService, clock: FakeClock) -> None:
    clock.now = datetime(2023, 12, 1, tzinfo=UTC)
    service.create_budget(budget("1000", period=BudgetPeriod("monthly", start_date=date(2023, 12, 1))))
    day = date(2023, 12, 1)
    while day < date(2024, 1, 10):
        clock.now = datetime(day.year, day.month, day.day, 22, tzinfo=UTC)
        service.process_job_cost(costing(f"d{day}", "20", ts=clock.now))  # 20/day: December stays under 1000
        day += timedelta(days=1)
    service.core.planner.lifecycle()
    assert "forecast_overrun" not in kinds(service)
    while day < date(2024, 1, 20):
        clock.now = datetime(day.year, day.month, day.day, 22, tzinfo=UTC)
        service.process_job_cost(costing(f"d{day}", "60", ts=clock.now))  # now 60/day: January will end over
        day += timedelta(days=1)
    service.core.planner.lifecycle()
    overrun = [a for a in service.list_alerts() if a.event.type == "forecast_overrun"]
    assert len(overrun) == 1
    assert overrun[0].event.forecast_spend is not None and overrun[0].event.forecast_spend > Decimal(1000)
    service.core.planner.lifecycle()
    assert kinds(service).count("forecast_overrun") == 1


def test_acknowledge_and_active_only(service: BudgetService, clock: FakeClock) -> None:
    service.create_budget(budget())
    service.process_job_cost(costing("a", "95"))
    alerts = service.list_alerts(active_only=True)
    assert len(alerts) == 2
    service.acknowledge_alert(alerts[0].event.id, "alice")
    active = service.list_alerts(active_only=True)
    assert [a.event.id for a in active] == [alerts[1].event.id]
    acked = next(a for a in service.list_alerts() if a.event.id == alerts[0].event.id)
    assert acked.acknowledged_by == "alice" and acked.acknowledged_at == clock.now
    with pytest.raises(NotFoundError):
        service.acknowledge_alert("no-such-alert", "alice")
    with pytest.raises(ValidationError):
        service.acknowledge_alert(alerts[1].event.id, "  ")
    clock.now = datetime(2024, 2, 2, tzinfo=UTC)  # January is over: nothing active
    assert service.list_alerts(active_only=True) == []


def test_alerts_survive_a_restart(service_factory: ServiceFactory) -> None:
    first = service_factory(**NO_BASE)
    first.create_budget(budget())
    first.process_job_cost(costing("a", "80"))
    first.close()
    again = service_factory(**NO_BASE)
    again.process_job_cost(costing("b", "1"))
    assert kinds(again) == ["warning"]


def test_lowering_a_budget_below_its_spend_alerts_at_once(service: BudgetService) -> None:
    """`budget update --amount` below the spend crosses thresholds with no new job: the
    alerts fire at once (a blocked queue may never get another job)."""
    made = service.create_budget(budget(amount="100"))
    service.process_job_cost(costing("j1", "50"))
    assert not service.list_alerts()
    service.update_budget(replace(made, amount=Decimal(40)))  # spend 50 of 40: 125 %
    kinds = sorted(a.event.type for a in service.list_alerts())
    assert kinds == ["block", "throttle", "warning"]
    service.update_budget(replace(made, amount=Decimal(30)))  # already fired this period: nothing new
    assert len(service.list_alerts()) == 3
