"""BudgetService on every store back-end (memory, SQLite, PostgreSQL).

``service_factory`` (conftest) builds services on stores that share one database, so
"a restart" is simply building a second service.  The clock is a FakeClock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import POSTGRES_URL, FakeClock
from jobbudget.config import Config
from jobbudget.domain.budget import Budget, EnforcementPolicy
from jobbudget.domain.cost import CostBreakdown, JobMetrics, seed_cost_model
from jobbudget.domain.errors import (
    ConflictError,
    JobBudgetError,
    NotFoundError,
    StorageUnavailableError,
    ValidationError,
    error_code,
    is_retryable,
)
from jobbudget.domain.estimation import PROFILES
from jobbudget.domain.money import NANO
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.ports import Store
from jobbudget.service import BudgetService
from jobbudget.storage.memory import MemoryStore
from jobbudget.storage.sql.store import SqlStore
from private_servers import TcpProxy

ServiceFactory = Callable[..., BudgetService]

TENANT = "acme"
QUEUE = "q1"
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
#: Prices are exactly ``cpu_time × 0.0001`` under this model (no base cost).
NO_BASE = {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}


def job(
    job_id: str,
    *,
    tenant: str = TENANT,
    queue: str = QUEUE,
    cpu: Decimal | str | int | float = 0,
    memory: Decimal | int = 0,
    payload: Decimal | int = 0,
    redis: Decimal | int = 0,
    network: Decimal | int = 0,
    job_type: str = "",
    ts: datetime | None = None,
) -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id=tenant,
        queue_name=queue,
        cpu_time=Decimal(str(cpu)) if not isinstance(cpu, float) else cpu,  # type: ignore[arg-type]
        memory_mb_seconds=Decimal(memory),
        payload_bytes=Decimal(payload),
        redis_ops=Decimal(redis),
        network_bytes=Decimal(network),
        job_type=job_type,
        timestamp=ts,
    )


def costing(job_id: str, cost: Decimal | str, **kw: Any) -> JobMetrics:
    """A job that costs exactly ``cost`` under ``NO_BASE`` pricing."""
    return job(job_id, cpu=Decimal(cost) * 10000, **kw)


def monthly(amount: Decimal | str, *, tenant: str = TENANT, queue: str = "", **kw: Any) -> Budget:
    return Budget(tenant_id=tenant, queue_name=queue, amount=Decimal(amount), period=BudgetPeriod("monthly"), **kw)


def seed_job() -> JobMetrics:
    """The design document's usage example."""
    return JobMetrics(
        job_id="job-123",
        tenant_id="acme-corp",
        queue_name="ml-training",
        cpu_time=15.2,  # type: ignore[arg-type]
        memory_mb_seconds=2048,  # type: ignore[arg-type]
        payload_bytes=51200,  # type: ignore[arg-type]
        redis_ops=25,  # type: ignore[arg-type]
        network_bytes=10240,  # type: ignore[arg-type]
        job_type="ml-training",
        priority=5,
    )


def action_of(service: BudgetService, queue: str = QUEUE, priority: int = 5, tenant: str = TENANT) -> str:
    return service.check_budget_compliance(tenant, queue, priority).type


# -- pricing and ingestion ------------------------------------------------------------
def test_seed_job_cost(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory()
    cost = service.process_job_cost(seed_job())
    assert cost.total_cost == Decimal("0.024122656")
    assert cost.cost_breakdown == CostBreakdown(
        cpu_cost=Decimal("0.00152"),
        memory_cost=Decimal("0.02048"),
        payload_cost=Decimal("0.001"),
        redis_cost=Decimal("0.000025"),
        network_cost=Decimal("0.000097656"),  # 0.00009765625 rounded half-even
        base_cost=Decimal("0.001"),
    )
    assert cost.duplicate is False
    assert cost.cost_model_version == 1
    assert cost.timestamp == clock.now
    stored = service.get_job_cost("acme-corp", "job-123")
    assert stored is not None
    assert stored.total_cost == Decimal("0.024122656")
    assert stored.cost_breakdown == cost.cost_breakdown
    assert stored.timestamp == clock.now
    [day] = service.get_daily_costs("acme-corp", start=clock.now.date(), end=clock.now.date())
    assert day.total_cost == Decimal("0.024122656") and day.total_jobs == 1


def test_batch_costs_are_exact(service_factory: ServiceFactory) -> None:
    service = service_factory()
    batch = [
        job("a", cpu="0.1", memory=3, payload=1, redis=7, network=1),
        job("b", cpu="123456.789", memory=10**9, payload=10**6, redis=10**6, network=10**9),
        job("c"),
        job("d", cpu=0.3),
    ]
    costs = service.process_job_costs(batch)

    def expected(m: JobMetrics) -> Decimal:
        parts = [
            m.cpu_time * Decimal("0.0001"),
            m.memory_mb_seconds * Decimal("0.00001"),
            m.payload_bytes / 1024 * Decimal("0.00002"),
            m.redis_ops * Decimal("0.000001"),
            m.network_bytes / 1048576 * Decimal("0.01"),
            Decimal("0.001"),
        ]
        return sum((p.quantize(NANO, rounding=ROUND_HALF_EVEN) for p in parts), Decimal(0))

    assert [c.total_cost for c in costs] == [expected(m) for m in batch]
    assert costs[2].total_cost == Decimal("0.001")
    assert costs[3].cost_breakdown.cpu_cost == Decimal("0.00003")  # 0.3 means 0.3, not its binary float
    for c in costs:
        assert c.cost_breakdown.total == c.total_cost
    [day] = service.get_daily_costs(TENANT, start=NOW.date(), end=NOW.date())
    assert day.total_cost == sum((c.total_cost for c in costs), Decimal(0))
    assert day.breakdown.total == day.total_cost


def test_duplicates_count_once(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("100"))
    first = service.process_job_cost(costing("j1", "1.5"))
    again = service.process_job_cost(costing("j1", "7"))  # re-sent with other figures
    assert first.duplicate is False
    assert again.duplicate is True
    assert again.total_cost == Decimal("1.5") and again.cost_breakdown == first.cost_breakdown

    batch = service.process_job_costs([costing("j2", "2"), costing("j2", "3"), costing("j1", "4")])
    assert [c.duplicate for c in batch] == [False, True, True]
    assert [c.total_cost for c in batch] == [Decimal(2), Decimal(2), Decimal("1.5")]
    assert service.get_budget_status(str(budget.id)).current_spend == Decimal("3.5")
    [day] = service.get_daily_costs(TENANT, start=NOW.date(), end=NOW.date())
    assert day.total_jobs == 2 and day.total_cost == Decimal("3.5")


def test_duplicates_count_once_across_restart(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("100"))
    service.process_job_cost(costing("j1", "10"))
    service.close()

    restarted = service_factory(**NO_BASE)
    again = restarted.process_job_cost(costing("j1", "99"))
    assert again.duplicate is True and again.total_cost == Decimal(10)
    assert restarted.get_budget_status(str(budget.id)).current_spend == Decimal(10)
    assert restarted.check_budget_compliance(TENANT, QUEUE).current_spend == Decimal(10)
    [day] = restarted.get_daily_costs(TENANT, start=NOW.date(), end=NOW.date())
    assert day.total_jobs == 1


def test_invalid_item_rejects_whole_batch(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory()
    future = job("late", ts=clock.now + timedelta(minutes=5, microseconds=1))
    with pytest.raises(ValidationError) as info:
        service.process_job_costs([job("ok1"), future, job("ok2")])
    assert info.value.field == "batch[1].timestamp"
    with pytest.raises(ValidationError):
        service.process_job_costs([job("ok1"), {"job_id": "x"}])  # type: ignore[list-item]
    assert service.get_job_cost(TENANT, "ok1") is None
    assert service.get_job_cost(TENANT, "ok2") is None
    assert service.get_daily_costs(TENANT, start=NOW.date() - timedelta(days=1), end=NOW.date() + timedelta(1)) == []


def test_absurd_job_cost_is_rejected(service_factory: ServiceFactory) -> None:
    """A job priced over MAX_JOB_COST is a broken reporter: the batch is refused."""
    service = service_factory()
    absurd = job("absurd", cpu=Decimal("1e12"))  # $100,000,000 of CPU under the default model
    with pytest.raises(ValidationError) as info:
        service.process_job_costs([job("fine"), absurd])
    assert info.value.field == "batch[1]"
    assert "absurd" in str(info.value)
    assert service.get_job_cost(TENANT, "fine") is None


def test_future_timestamps(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory()
    with pytest.raises(ValidationError):
        service.process_job_cost(job("f", ts=clock.now + timedelta(hours=1)))
    # a little clock skew is tolerated (five minutes)
    edge = clock.now + timedelta(minutes=5)
    assert service.process_job_cost(job("skew", ts=edge)).timestamp == edge
    assert service.get_job_cost(TENANT, "f") is None


# -- enforcement ----------------------------------------------------------------------
def test_spend_is_fresh(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    service.create_budget(monthly("10"))
    assert action_of(service) == "allow"
    service.process_job_cost(costing("j1", "10"))
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert action.type == "block" and action.current_spend == Decimal(10)
    assert action.allowed is False


def test_tenant_wide_and_queue_budgets(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    wide = service.create_budget(monthly("100"))
    q1 = service.create_budget(monthly("100", queue=QUEUE))
    service.process_job_costs(
        [
            costing("a", "10", queue=QUEUE),
            costing("b", "20", queue="q2"),
            costing("c", "40", tenant="globex", queue=QUEUE),
        ]
    )
    assert service.get_budget_status(str(wide.id)).current_spend == Decimal(30)
    assert service.get_budget_status(str(q1.id)).current_spend == Decimal(10)
    # q2 is only covered by the tenant-wide budget; globex by none
    assert service.check_budget_compliance(TENANT, "q2").current_spend == Decimal(30)
    assert service.check_budget_compliance("globex", QUEUE).message == "no budget applies"


def test_most_restrictive_wins(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    wide = service.create_budget(monthly("100"))
    queue = service.create_budget(monthly("10", queue=QUEUE))
    service.process_job_cost(costing("a", "9.5", queue=QUEUE))  # 9.5 % of wide, 95 % of queue
    got = service.check_budget_compliance(TENANT, QUEUE)
    assert got.type == "throttle" and got.budget_id == queue.id
    service.process_job_cost(costing("b", "70", queue="q2"))  # wide at 79.5 %: warn
    assert service.check_budget_compliance(TENANT, "q2").type == "warn"
    assert service.check_budget_compliance(TENANT, QUEUE).budget_id == queue.id  # throttle beats warn
    service.process_job_cost(costing("c", "20.5", queue="q2"))  # wide at 100 %: block
    got = service.check_budget_compliance(TENANT, QUEUE)
    assert got.type == "block" and got.budget_id == wide.id


def test_exact_thresholds(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("100"))
    steps = [
        ("74.999999999", "allow"),
        ("0.000000001", "warn"),  # exactly 75 %
        ("14.999999999", "warn"),
        ("0.000000001", "throttle"),  # exactly 90 %
        ("9.999999999", "throttle"),
        ("0.000000001", "block"),  # exactly 100 %
    ]
    total = Decimal(0)
    for i, (cost, expected) in enumerate(steps):
        service.process_job_cost(costing(f"j{i}", cost))
        total += Decimal(cost)
        action = service.check_budget_compliance(TENANT, QUEUE)
        assert (action.type, action.current_spend) == (expected, total), cost
        if expected == "throttle":
            assert action.factor == 0.5
    status = service.get_budget_status(str(budget.id))
    assert status.utilization == Decimal(1) and status.action.type == "block"


def test_custom_thresholds_and_no_block(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    service.create_budget(
        monthly(
            "3",
            warning_threshold=Decimal("0.5"),
            throttle_threshold=Decimal("0.8"),
            block_threshold=Decimal("1.2"),
            enforcement_policy=EnforcementPolicy(block_new_jobs=False, throttle_factor=0.25),
        )
    )
    service.process_job_cost(costing("a", "1.5"))
    assert action_of(service) == "warn"
    service.process_job_cost(costing("b", "0.9"))  # 2.4 = 80 %
    assert action_of(service) == "throttle"
    service.process_job_cost(costing("c", "10"))
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert action.type == "throttle" and action.factor == 0.25  # block_new_jobs=False


def test_warn_only(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    service.create_budget(monthly("1", enforcement_policy=EnforcementPolicy(warn_only=True)))
    service.process_job_cost(costing("a", "5"))
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert action.type == "warn" and action.allowed and "warn-only" in action.message
    assert action.current_spend == Decimal(5) and action.utilization == Decimal(5)


def test_grace_period(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    service.create_budget(monthly("1", enforcement_policy=EnforcementPolicy(grace_period_hours=2)))
    service.process_job_cost(costing("a", "5"))
    assert action_of(service) == "warn"
    clock.advance(hours=2, microseconds=-1)
    action = service.check_budget_compliance(TENANT, QUEUE)
    assert action.type == "warn" and "grace period" in action.message
    clock.advance(microseconds=1)
    assert action_of(service) == "block"


def wait_for(predicate: Callable[[], bool], timeout: float = 4.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_emergency_bypass_is_audited(service_factory: ServiceFactory, store_factory: Callable[[], Store]) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("1"))
    service.process_job_cost(costing("a", "1.05"))  # within the 10 % bypass allowance
    assert action_of(service, priority=8) == "block"
    action = service.check_budget_compliance(TENANT, QUEUE, priority=9)
    assert action.type == "allow" and action.bypass is True and action.allowed
    assert "emergency bypass" in action.message
    service.flush()
    [entry] = service.list_audit(kind="bypass")
    assert (entry.tenant_id, entry.queue_name, entry.budget_id) == (TENANT, QUEUE, budget.id)
    assert entry.details["priority"] == 9
    assert Decimal(entry.details["spend"]) == Decimal("1.05")

    # the background flusher writes the next one within about a second
    reader = store_factory()
    service.check_budget_compliance(TENANT, QUEUE, priority=10)
    assert wait_for(lambda: len(reader.list_audit(kind="bypass")) == 2)
    # and close() writes whatever is still buffered
    service.check_budget_compliance(TENANT, QUEUE, priority=9)
    service.close()
    assert len(store_factory().list_audit(kind="bypass")) == 3


def test_emergency_bypass_can_be_disabled(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    service.create_budget(monthly("1", enforcement_policy=EnforcementPolicy(allow_emergency=False)))
    service.process_job_cost(costing("a", "2"))
    action = service.check_budget_compliance(TENANT, QUEUE, priority=10)
    assert action.type == "block" and action.bypass is False
    assert service.list_audit(kind="bypass") == []


def test_state_rebuilt_at_start(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    wide = service.create_budget(monthly("100"))
    queue = service.create_budget(monthly("20", queue=QUEUE))
    daily = service.create_budget(Budget(tenant_id=TENANT, amount=Decimal(5), period=BudgetPeriod("daily")))
    service.process_job_costs([costing("a", "10", queue=QUEUE), costing("b", "70", queue="q2")])
    service.process_job_cost(costing("old", "3", ts=clock.now - timedelta(days=2)))  # other day, same month
    before = {q: service.check_budget_compliance(TENANT, q) for q in (QUEUE, "q2", "q3")}
    statuses = {b.id: service.get_budget_status(str(b.id)).current_spend for b in (wide, queue, daily)}
    assert statuses == {wide.id: Decimal(83), queue.id: Decimal(13), daily.id: Decimal(80)}
    service.close()

    restarted = service_factory(**NO_BASE)
    after = {q: restarted.check_budget_compliance(TENANT, q) for q in (QUEUE, "q2", "q3")}
    assert after == before
    assert {b.id: restarted.get_budget_status(str(b.id)).current_spend for b in (wide, queue, daily)} == statuses
    assert {s.budget.id: s.spend for s in restarted.active_budget_states()} == statuses


def test_create_budget_mid_period_seeds_spend(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory(**NO_BASE)
    service.process_job_costs(
        [
            costing("jan3", "1", ts=datetime(2024, 1, 3, tzinfo=UTC)),
            costing("jan1", "0.000000001", ts=datetime(2024, 1, 1, tzinfo=UTC)),
            costing("dec31", "50", ts=datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            costing("q2", "2", queue="q2"),
            costing("globex", "4", tenant="globex"),
            costing("now", "0.5"),
        ]
    )
    wide = service.create_budget(monthly("10"))
    queue = service.create_budget(monthly("10", queue=QUEUE))
    assert service.get_budget_status(str(wide.id)).current_spend == Decimal("3.500000001")
    assert service.get_budget_status(str(queue.id)).current_spend == Decimal("1.500000001")
    service.process_job_cost(costing("after", "6.5"))
    assert service.check_budget_compliance(TENANT, QUEUE).type == "block"
    assert service.get_budget_status(str(wide.id)).current_spend == Decimal("10.000000001")


def test_update_budget(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("10"))
    service.process_job_costs([costing("a", "4", queue=QUEUE), costing("b", "5", queue="q2")])
    assert service.get_budget_status(str(budget.id)).current_spend == Decimal(9)

    narrowed = service.update_budget(replace(budget, queue_name=QUEUE))
    assert narrowed.created_at == budget.created_at
    assert service.get_budget_status(str(budget.id)).current_spend == Decimal(4)
    assert action_of(service, "q2") == "allow"  # no longer covered
    assert action_of(service, QUEUE) == "allow"

    service.update_budget(replace(budget, queue_name="q2", amount=Decimal(5)))
    assert service.get_budget_status(str(budget.id)).current_spend == Decimal(5)
    assert action_of(service, "q2") == "block"
    assert action_of(service, QUEUE) == "allow"
    service.process_job_cost(costing("c", "1", queue="q2"))
    assert service.get_budget_status(str(budget.id)).current_spend == Decimal(6)
    assert service.get_budget(str(budget.id)).amount == Decimal(5)

    with pytest.raises(ConflictError):
        service.update_budget(replace(budget, tenant_id="globex"))
    with pytest.raises(NotFoundError):
        service.update_budget(replace(budget, id="no-such-budget"))
    with pytest.raises(ValidationError):
        service.update_budget(replace(budget, id=None))
    with pytest.raises(ValidationError):
        service.update_budget(replace(budget, amount=Decimal(-1)))


def test_deactivate_budget(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("1"))
    service.process_job_cost(costing("a", "2"))
    assert action_of(service) == "block"
    off = service.deactivate_budget(str(budget.id))
    assert off.active is False
    assert action_of(service) == "allow"
    assert service.list_budgets(TENANT) == []
    assert [b.id for b in service.list_budgets(TENANT, include_inactive=True)] == [budget.id]
    status = service.get_budget_status(str(budget.id))
    assert status.action.type == "allow" and "inactive" in status.action.message
    assert status.current_spend == Decimal(2)
    kinds = [e.kind for e in service.list_audit(tenant_id=TENANT)]
    assert kinds[:2] == ["budget_updated", "budget_created"]
    service.close()
    assert action_of(service_factory(**NO_BASE)) == "allow"  # also after a restart


def test_get_budget_status(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("8"))
    assert budget.id is not None and budget.period.start_date == date(2024, 1, 1)
    service.process_job_cost(costing("a", "7"))
    status = service.get_budget_status(budget.id)
    assert status.budget.id == budget.id and status.budget.amount == Decimal(8)
    assert status.current_spend == Decimal(7)
    assert status.utilization == Decimal("0.875")
    assert status.action.type == "warn" and status.action.budget_id == budget.id
    assert (status.period_start, status.period_end) == (date(2024, 1, 1), date(2024, 1, 31))


def test_unknown_budget(service_factory: ServiceFactory) -> None:
    service = service_factory()
    for call in (service.get_budget, service.get_budget_status, service.deactivate_budget):
        with pytest.raises(NotFoundError) as info:
            call("no-such-budget")
        assert info.value.code == "BUDGET_NOT_FOUND"
        assert error_code(info.value) == "BUDGET_NOT_FOUND"
        assert not is_retryable(info.value)


def test_create_budget_validation(service_factory: ServiceFactory) -> None:
    service = service_factory()
    with pytest.raises(ValidationError):
        service.create_budget(monthly("0"))
    with pytest.raises(ValidationError):
        service.create_budget(replace(monthly("1"), id="chosen"))
    assert service.list_budgets(include_inactive=True) == []


def test_update_cost_model(service_factory: ServiceFactory) -> None:
    service = service_factory()
    old = service.process_job_cost(seed_job())
    dearer_cpu = replace(seed_cost_model(), cpu_time_weight=Decimal("0.001"), base_job_weight=Decimal(0))
    version = service.update_cost_model(dearer_cpu)
    assert version.version == 2 and service.get_cost_model_version() == 2
    stored = service.get_job_cost("acme-corp", "job-123")
    assert stored is not None
    assert stored.total_cost == Decimal("0.024122656") and stored.cost_model_version == 1
    assert service.process_job_cost(seed_job()).total_cost == old.total_cost  # still a duplicate

    new = service.process_job_cost(replace(seed_job(), job_id="job-124"))
    assert new.cost_model_version == 2
    assert new.cost_breakdown.cpu_cost == Decimal("0.0152")
    assert new.total_cost == Decimal("0.0152") + Decimal("0.02048") + Decimal("0.001") + Decimal("0.000122656")
    assert [v.version for v in service.list_cost_models()] == [1, 2]
    service.close()
    assert service_factory().get_cost_model_version() == 2  # kept across a restart


def test_estimate_switches_to_tenant_history(service_factory: ServiceFactory, clock: FakeClock) -> None:
    service = service_factory()

    def price(cpu: Decimal, memory: Decimal, redis: Decimal, network: Decimal, payload_kb: Decimal) -> Decimal:
        parts = [
            cpu * Decimal("0.0001"),
            memory * Decimal("0.00001"),
            payload_kb * Decimal("0.00002"),
            redis * Decimal("0.000001"),
            network / 1048576 * Decimal("0.01"),
            Decimal("0.001"),
        ]
        return sum((p.quantize(NANO, rounding=ROUND_HALF_EVEN) for p in parts), Decimal(0))

    etl = PROFILES["etl"]
    from_profile = price(
        Decimal(10), 10 * etl.memory_mb_per_cpu_second, etl.redis_ops_per_job, etl.network_bytes_per_job, Decimal(3)
    )
    from_history = price(Decimal(10), Decimal(500), Decimal(4), Decimal(1000), Decimal(3))
    assert from_profile != from_history
    assert service.estimate_job_cost("etl", 10, 3, tenant_id=TENANT) == from_profile
    for i in range(19):
        service.process_job_cost(job(f"e{i}", cpu=2, memory=100, redis=4, network=1000, job_type="etl"))
    service.process_job_cost(job("e0", cpu=2, memory=100, redis=4, network=1000, job_type="etl"))  # duplicate
    assert service.estimate_job_cost("etl", 10, 3, tenant_id=TENANT) == from_profile  # 19 observed
    service.process_job_cost(job("e19", cpu=2, memory=100, redis=4, network=1000, job_type="etl"))
    assert service.estimate_job_cost("etl", 10, 3, tenant_id=TENANT) == from_history  # 20 observed
    assert service.estimate_job_cost("etl", 10, 3) == from_history  # job-type history (all tenants)
    assert service.estimate_job_cost("etl", 10, 3, tenant_id="globex") == from_history

    # a fresh service reads the same history from the store
    clock.advance(minutes=2)
    service.close()
    assert service_factory().estimate_job_cost("etl", 10, 3, tenant_id=TENANT) == from_history


# -- storage failures -----------------------------------------------------------------
DEAD_URL = "postgresql+psycopg://postgres@127.0.0.1:1/test"


def test_unreachable_postgres_is_retryable() -> None:
    store = SqlStore(DEAD_URL)
    try:
        with pytest.raises(StorageUnavailableError) as info:
            store.ping()
        assert is_retryable(info.value) and info.value.code == "STORAGE_UNAVAILABLE"
        service = BudgetService(Config(), store=store)  # constructing does no I/O
        with pytest.raises(StorageUnavailableError):
            service.start()  # starting it (or its first use) meets the dead database
    finally:
        store.close()


@pytest.fixture
def proxied_postgres(pg_schema: str) -> Iterator[tuple[TcpProxy, str]]:
    url = sa.engine.make_url(POSTGRES_URL)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.cut()


def test_lost_postgres_connection(proxied_postgres: tuple[TcpProxy, str], pg_schema: str, clock: FakeClock) -> None:
    proxy, url = proxied_postgres
    store = SqlStore(url, schema=pg_schema)
    with BudgetService(Config(**NO_BASE), clock=clock, store=store) as service:
        service.create_budget(monthly("1"))
        service.process_job_cost(costing("a", "2"))
        proxy.cut()

        with pytest.raises(StorageUnavailableError) as info:
            service.process_job_cost(costing("b", "1"))
        assert is_retryable(info.value)
        with pytest.raises(StorageUnavailableError):
            service.ping()
        with pytest.raises(JobBudgetError) as failed:
            service.create_budget(monthly("5"))
        assert is_retryable(failed.value) and error_code(failed.value) == "STORAGE_UNAVAILABLE"
        # admission keeps working from memory while the database is away
        assert service.check_budget_compliance(TENANT, QUEUE).type == "block"

        proxy.start()  # the database is back: the same service recovers
        service.ping()
        assert service.process_job_cost(costing("b", "1")).duplicate is False
        assert service.check_budget_compliance(TENANT, QUEUE).current_spend == Decimal(3)


# -- concurrency ----------------------------------------------------------------------
class _IngestDuringReload:
    """Wraps a store; while ``armed``, a job is processed on another thread in the
    middle of the service's resync (after the spend has been read)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.armed: Callable[[], None] | None = None
        self.thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def load_spend(self, keys: Any) -> Any:
        found = self.inner.load_spend(keys)
        if self.armed is not None:
            work, self.armed = self.armed, None
            self.thread = threading.Thread(target=work)
            self.thread.start()
            self.thread.join(timeout=0.5)  # with a correct service this waits for the resync
        return found


def test_resync_does_not_lose_concurrent_jobs(store_factory: Callable[[], Store], clock: FakeClock) -> None:
    wrapper = _IngestDuringReload(store_factory())
    service = BudgetService(Config(**NO_BASE), clock=clock, store=wrapper)  # type: ignore[arg-type]
    try:
        budget = service.create_budget(monthly("10"))
        service.process_job_cost(costing("a", "1"))
        wrapper.armed = lambda: service.process_job_cost(costing("b", "2"))
        service.resync()  # what the background flusher does every flush_interval
        assert wrapper.thread is not None
        wrapper.thread.join(timeout=10)
        assert service.check_budget_compliance(TENANT, QUEUE).current_spend == Decimal(3)
        assert service.get_budget_status(str(budget.id)).current_spend == Decimal(3)
    finally:
        service.close()


# -- properties -----------------------------------------------------------------------
job_ids = st.sampled_from([f"j{i}" for i in range(12)])
queues = st.sampled_from(["q1", "q2", "q3"])
cpu = st.decimals(min_value=0, max_value=1000, places=5, allow_nan=False, allow_infinity=False)
batches = st.lists(st.lists(st.tuples(job_ids, queues, cpu), min_size=1, max_size=8), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches)
def test_random_batches_count_each_job_once(batches: list[list[tuple[str, str, Decimal]]]) -> None:
    clock = FakeClock(NOW)
    service = BudgetService(Config(), clock=clock, store=MemoryStore())
    try:
        wide = service.create_budget(monthly("1000000"))
        q1 = service.create_budget(monthly("1000000", queue="q1"))
        first: dict[str, tuple[str, Decimal]] = {}
        for batch in batches:
            costs = service.process_job_costs([job(j, queue=q, cpu=c) for j, q, c in batch])
            for (j, q, _), cost in zip(batch, costs, strict=True):
                if j in first:
                    assert cost.duplicate and cost.total_cost == first[j][1]
                else:
                    assert not cost.duplicate
                    first[j] = (q, cost.total_cost)
        unique = list(first.values())
        assert service.get_budget_status(str(wide.id)).current_spend == sum((c for _, c in unique), Decimal(0))
        assert service.get_budget_status(str(q1.id)).current_spend == sum(
            (c for q, c in unique if q == "q1"), Decimal(0)
        )
        days = service.get_daily_costs(TENANT, start=NOW.date(), end=NOW.date())
        for row in days:
            expected = [c for q, c in unique if q == row.queue_name]
            assert row.total_cost == sum(expected, Decimal(0)) and row.total_jobs == len(expected)
            assert row.breakdown.total == row.total_cost
        assert sum(r.total_jobs for r in days) == len(unique)
    finally:
        service.close()


def test_reactivated_budget_recounts_spend(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("10"))
    service.process_job_cost(costing("a", "4"))
    service.deactivate_budget(str(budget.id))
    service.process_job_cost(costing("b", "5"))  # while inactive: not in the budget's ledger yet
    service.update_budget(replace(budget, active=True))
    assert service.get_budget_status(str(budget.id)).current_spend == Decimal(9)
    service.process_job_cost(costing("c", "1"))
    assert service.check_budget_compliance(TENANT, QUEUE).type == "block"
    service.close()
    assert service_factory(**NO_BASE).check_budget_compliance(TENANT, QUEUE).current_spend == Decimal(10)


def test_budget_created_after_prune_counts_pruned_days(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE, raw_retention_days=1)
    service.process_job_costs(
        [
            costing("jan2", "2", ts=datetime(2024, 1, 2, 12, tzinfo=UTC)),
            costing("jan14", "3", ts=datetime(2024, 1, 14, 12, tzinfo=UTC)),
            costing("dec", "100", ts=datetime(2023, 12, 30, tzinfo=UTC)),
        ]
    )
    result = service.prune()
    assert result.jobs_deleted == 2  # raw rows before Jan 14
    assert service.get_job_cost(TENANT, "jan2") is None
    budget = service.create_budget(monthly("10"))
    assert service.get_budget_status(str(budget.id)).current_spend == Decimal(5)
    [jan2] = service.get_daily_costs(TENANT, start=date(2024, 1, 2), end=date(2024, 1, 2))
    assert (jan2.total_cost, jan2.p95_job_cost) == (Decimal(2), Decimal(2))


def test_timestamps_in_other_zones(service_factory: ServiceFactory) -> None:
    from zoneinfo import ZoneInfo

    service = service_factory(**NO_BASE)
    budget = service.create_budget(monthly("10"))
    tokyo = datetime(2024, 1, 1, 8, 59, 59, tzinfo=ZoneInfo("Asia/Tokyo"))  # Dec 31 23:59:59 UTC
    cost = service.process_job_cost(costing("t", "1", ts=tokyo))
    assert cost.timestamp == datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert service.get_budget_status(str(budget.id)).current_spend == 0
    [day] = service.get_daily_costs(TENANT, start=date(2023, 12, 31), end=date(2024, 1, 1))
    assert day.date == date(2023, 12, 31)


def test_checks_do_not_wait_for_a_slow_ingest(clock: FakeClock) -> None:
    """Admission checks read memory only: a batch stuck in the database does not hold
    them up, and its spend counts as soon as it is committed."""
    entered, release = threading.Event(), threading.Event()

    class SlowStore(MemoryStore):
        def record_jobs(self, records: Any, **kwargs: Any) -> Any:
            entered.set()
            release.wait(5)
            return super().record_jobs(records, **kwargs)

    service = BudgetService(Config(**NO_BASE), clock=clock, store=SlowStore())  # type: ignore[arg-type]
    try:
        service.create_budget(monthly("1"))
        worker = threading.Thread(target=service.process_job_costs, args=([costing("slow", "0.95")],))
        worker.start()
        assert entered.wait(5)
        started = time.perf_counter()
        assert action_of(service) == "allow"  # answered while the batch is in flight
        assert time.perf_counter() - started < 0.5
        release.set()
        worker.join(5)
        assert action_of(service) == "throttle"
    finally:
        release.set()
        service.close()
