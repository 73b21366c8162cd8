"""Budget periods rolling over under a FakeClock, on every store back-end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import FakeClock
from jobbudget.domain.budget import Budget
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.domain.records import SpendKey
from jobbudget.ports import Store
from jobbudget.service import BudgetService

ServiceFactory = Callable[..., BudgetService]

TENANT = "acme"
QUEUE = "q1"
NO_BASE = {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}
US = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def costing(job_id: str, cost: str, *, ts: datetime | None = None, queue: str = QUEUE) -> JobMetrics:
    """A job costing exactly ``cost`` under ``NO_BASE`` pricing."""
    zero = Decimal(0)
    return JobMetrics(
        job_id=job_id,
        tenant_id=TENANT,
        queue_name=queue,
        cpu_time=Decimal(cost) * 10000,
        memory_mb_seconds=zero,
        payload_bytes=zero,
        redis_ops=zero,
        network_bytes=zero,
        timestamp=ts,
    )


def budget(amount: str, type_: str = "monthly", tz: str = "UTC", **period: Any) -> Budget:
    return Budget(tenant_id=TENANT, amount=Decimal(amount), period=BudgetPeriod(type=type_, timezone=tz, **period))


def check(service: BudgetService) -> str:
    return service.check_budget_compliance(TENANT, QUEUE).type


def test_monthly_rollover_at_utc_midnight(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("10"))
    service.process_job_cost(costing("jan", "10"))
    assert check(service) == "block"
    clock.now = utc(2024, 1, 31, 23, 59, 59, 999999)
    assert check(service) == "block"
    clock.advance(microseconds=1)
    assert clock.now == utc(2024, 2, 1)
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert action.type == "allow" and action.current_spend == 0
    status = service.get_budget_status(str(b.id))
    assert (status.period_start, status.period_end) == (date(2024, 2, 1), date(2024, 2, 29))
    assert status.current_spend == 0


def test_new_york_budget_rolls_over_at_five_utc(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("10", tz="America/New_York"))
    assert b.period.start_date == date(2024, 1, 1)
    # Jan 1 00:00-05:00 UTC is still December in New York
    service.process_job_cost(costing("dec", "4", ts=utc(2024, 1, 1, 4, 59, 59, 999999)))
    service.process_job_cost(costing("jan", "9", ts=utc(2024, 1, 1, 5)))
    assert service.get_budget_status(str(b.id)).current_spend == Decimal(9)
    service.process_job_cost(costing("jan2", "1"))
    clock.now = utc(2024, 2, 1, 4, 59, 59, 999999)  # Jan 31 23:59:59.999999 EST
    assert check(service) == "block"
    clock.now = utc(2024, 2, 1, 5)
    assert check(service) == "allow"
    status = service.get_budget_status(str(b.id))
    assert (status.period_start, status.period_end, status.current_spend) == (date(2024, 2, 1), date(2024, 2, 29), 0)


def test_late_reports_count_toward_their_own_period(
    service_factory: ServiceFactory, store_factory: Callable[[], Store], clock: FakeClock
) -> None:
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("10"))
    service.process_job_cost(costing("jan", "6"))
    clock.now = utc(2024, 2, 1, 10)
    assert check(service) == "allow"
    # reported in February, finished in January
    service.process_job_cost(costing("late", "5", ts=utc(2024, 1, 31, 23, 59, 59, 999999)))
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert action.type == "allow" and action.current_spend == 0
    service.process_job_cost(costing("feb", "7.5"))
    assert service.get_budget_status(str(b.id)).current_spend == Decimal("7.5")
    assert check(service) == "warn"

    ledger = store_factory().load_spend([SpendKey(str(b.id), date(2024, 1, 1)), SpendKey(str(b.id), date(2024, 2, 1))])
    assert ledger == {SpendKey(str(b.id), date(2024, 1, 1)): 11, SpendKey(str(b.id), date(2024, 2, 1)): Decimal("7.5")}
    [jan31] = service.get_daily_costs(TENANT, start=date(2024, 1, 31), end=date(2024, 1, 31))
    assert jan31.total_cost == 5
    # a restart agrees
    service.close()
    again = service_factory(**NO_BASE)
    assert again.check_budget_compliance(TENANT, QUEUE).current_spend == Decimal("7.5")


def test_daily_budget_across_spring_forward(service_factory: ServiceFactory, clock: FakeClock) -> None:
    clock.now = utc(2024, 3, 10, 12)  # Sunday Mar 10 2024: New York skips 02:00-03:00 (23 hours)
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("1", "daily", "America/New_York"))
    service.process_job_cost(costing("early", "0.5", ts=utc(2024, 3, 10, 5)))  # 00:00 EST
    service.process_job_cost(costing("before", "100", ts=utc(2024, 3, 10, 4, 59, 59, 999999)))  # Mar 9
    assert service.get_budget_status(str(b.id)).current_spend == Decimal("0.5")
    service.process_job_cost(costing("noon", "0.5"))
    assert check(service) == "block"
    clock.now = utc(2024, 3, 11, 3, 59, 59, 999999)  # 23:59:59.999999 EDT
    assert check(service) == "block"
    clock.now = utc(2024, 3, 11, 4)  # midnight EDT, 23 hours after the last one
    assert check(service) == "allow"
    status = service.get_budget_status(str(b.id))
    assert (status.period_start, status.period_end) == (date(2024, 3, 11), date(2024, 3, 11))


def test_daily_budget_across_fall_back(service_factory: ServiceFactory, clock: FakeClock) -> None:
    clock.now = utc(2024, 11, 3, 12)  # Sunday Nov 3 2024: New York repeats 01:00-02:00 (25 hours)
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("1", "daily", "America/New_York"))
    service.process_job_cost(costing("a", "0.6"))
    clock.now = utc(2024, 11, 4, 4, 30)  # 23:30 EST, still Nov 3 locally
    service.process_job_cost(costing("b", "0.4"))
    assert check(service) == "block"
    assert service.get_budget_status(str(b.id)).period_start == date(2024, 11, 3)
    clock.now = utc(2024, 11, 4, 4, 59, 59, 999999)
    assert check(service) == "block"
    clock.now = utc(2024, 11, 4, 5)
    assert check(service) == "allow"
    assert service.get_budget_status(str(b.id)).period_start == date(2024, 11, 4)


def test_leap_day(service_factory: ServiceFactory, clock: FakeClock) -> None:
    clock.now = utc(2024, 2, 29, 12)
    service = service_factory(**NO_BASE)
    month = service.create_budget(budget("10"))
    day = service.create_budget(budget("10", "daily"))
    assert (month.period.start_date, month.period.end_date) == (date(2024, 2, 1), date(2024, 2, 29))
    assert (day.period.start_date, day.period.end_date) == (date(2024, 2, 29), date(2024, 2, 29))
    service.process_job_cost(costing("leap", "10"))
    clock.now = utc(2024, 2, 29, 23, 59, 59, 999999)
    assert check(service) == "block"
    clock.advance(microseconds=1)
    assert check(service) == "allow"
    status = service.get_budget_status(str(month.id))
    assert (status.period_start, status.period_end) == (date(2024, 3, 1), date(2024, 3, 31))
    assert service.get_budget_status(str(day.id)).period_start == date(2024, 3, 1)


def test_month_anchored_on_the_31st_starts_on_leap_day(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("10", start_date=date(2024, 1, 31)))
    assert b.period.end_date == date(2024, 2, 28)
    clock.now = utc(2024, 2, 28, 12)
    service.process_job_cost(costing("a", "10"))
    clock.now = utc(2024, 2, 28, 23, 59, 59, 999999)
    assert check(service) == "block"
    clock.advance(microseconds=1)
    assert check(service) == "allow"
    status = service.get_budget_status(str(b.id))
    assert (status.period_start, status.period_end) == (date(2024, 2, 29), date(2024, 3, 30))


def test_job_after_boundary_before_first_check(
    service_factory: ServiceFactory, store_factory: Callable[[], Store], clock: FakeClock
) -> None:
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("10"))
    service.process_job_cost(costing("jan", "10"))
    assert check(service) == "block"
    clock.now = utc(2024, 2, 1, 0, 0, 1)
    # no check has happened in February yet: the state still holds January
    service.process_job_costs([costing("feb", "3"), costing("jan-late", "2", ts=utc(2024, 1, 31, 23, 59, 59))])
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert action.type == "allow" and action.current_spend == 3
    service.process_job_cost(costing("feb2", "4.5"))
    assert check(service) == "warn"  # 7.5 of 10
    jan, feb = SpendKey(str(b.id), date(2024, 1, 1)), SpendKey(str(b.id), date(2024, 2, 1))
    assert store_factory().load_spend([jan, feb]) == {jan: 12, feb: Decimal("7.5")}


def test_restart_in_the_next_period(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("10"))
    service.process_job_cost(costing("jan", "10"))
    service.close()
    clock.now = utc(2024, 3, 5)  # skipped February entirely
    restarted = service_factory(**NO_BASE)
    assert check(restarted) == "allow"
    assert restarted.get_budget_status(str(b.id)).period_start == date(2024, 3, 1)
    restarted.process_job_cost(costing("mar", "9"))
    assert check(restarted) == "throttle"


def test_budget_starting_later_and_custom_period_ending(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    later = service.create_budget(budget("10", start_date=date(2024, 2, 1)))
    custom = service.create_budget(budget("5", "custom", start_date=date(2024, 1, 10), end_date=date(2024, 1, 20)))
    service.process_job_cost(costing("jan", "6"))  # counts toward the custom period only
    assert check(service) == "block"
    assert service.get_budget_status(str(later.id)).period_start is None
    clock.now = utc(2024, 1, 21)  # the custom period is over; the monthly one has not begun
    assert check(service) == "allow"
    status = service.get_budget_status(str(custom.id))
    assert status.period_start is None and status.action.type == "allow"
    clock.now = utc(2024, 2, 1, 0, 0, 1)
    service.process_job_cost(costing("feb", "9"))  # before any check in February
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert (action.type, action.current_spend, action.budget_id) == ("throttle", 9, later.id)


def test_as_of_reads_a_past_moment_and_moves_nothing_else(service_factory: ServiceFactory, clock: FakeClock) -> None:
    """``as_of`` (what ``jobbudget tui --at`` shows): reads in the block see that moment,
    from the ledger; the live state, enforcement, other threads and writes keep the
    service's own clock."""
    service = service_factory(**NO_BASE)
    b = service.create_budget(budget("10"))
    service.process_job_cost(costing("jan", "10"))
    clock.now = utc(2024, 2, 10)
    service.process_job_cost(costing("feb", "4"))
    assert check(service) == "allow"
    then = utc(2024, 1, 31, 12)
    with service.as_of(then):
        assert service.now() == then
        past = service.get_budget_status(str(b.id))
        assert (past.period_start, past.current_spend, past.action.type) == (date(2024, 1, 1), Decimal(10), "block")
        assert service.dashboard().generated_at == then
        other: list[datetime] = []
        thread = threading.Thread(target=lambda: other.append(service.now()))
        thread.start()
        thread.join()
        assert other == [clock.now]  # another thread: the service's clock
    assert service.now() == clock.now
    state = service.core.spend.index.get(str(b.id))
    assert state is not None and state.window is not None and state.window.start_date == date(2024, 2, 1)
    now = service.get_budget_status(str(b.id))
    assert (now.period_start, now.current_spend) == (date(2024, 2, 1), Decimal(4))
    assert check(service) == "allow"
    with pytest.raises(ValidationError), service.as_of(datetime(2024, 1, 31)):  # naive: which zone?
        pass
