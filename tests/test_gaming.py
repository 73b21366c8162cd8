"""Gaming and abuse: the emergency bypass is capped per period, splitting work over
job ids or queues does not dodge a tenant-wide budget, jobs reported with no
resources still pay the base cost, and under-reported usage shows up in the
report's recommendations.  (A tenant key reporting another tenant's jobs is refused:
``test_api_auth.py::test_another_tenants_things_cannot_be_written``.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from jobbudget.analytics.calibration import run_calibration
from jobbudget.domain.budget import Budget, EnforcementPolicy
from jobbudget.domain.cost import CostModel, JobMetrics
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.service import BudgetService
from test_calibration import make_benchmarks

ServiceFactory = Callable[..., BudgetService]
NO_BASE = {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}  # a job costs exactly cpu_time × 0.0001
MONTH = BudgetPeriod("monthly")


def job(job_id: str, *, tenant: str = "acme", queue: str = "q", cpu: Decimal | str = "0", **usage: int) -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id=tenant,
        queue_name=queue,
        cpu_time=Decimal(cpu),
        memory_mb_seconds=Decimal(usage.get("memory", 0)),
        payload_bytes=Decimal(usage.get("payload", 0)),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
    )


def costing(job_id: str, dollars: str, **kw: str) -> JobMetrics:
    return job(job_id, cpu=str(Decimal(dollars) * 10000), **kw)


# -- the emergency bypass ----------------------------------------------------------------


def test_bypass_stops_at_its_allowance_through_checks(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    service.create_budget(Budget(tenant_id="acme", amount=Decimal(10), period=MONTH))
    service.process_job_cost(costing("base", "10"))
    bypassed = 0
    for i in range(50):  # emergency jobs keep coming, each costing $0.05
        action = service.check_budget_compliance("acme", "q", priority=10)
        if not action.allowed:
            assert "bypass allowance" in action.message
            break
        assert action.bypass
        bypassed += 1
        service.process_job_cost(costing(f"e{i}", "0.05"))
    # the allowance is 10 % of $10 past the block threshold: 20 jobs of $0.05
    assert bypassed == 20
    assert service.get_budget_status(service.list_budgets("acme")[0].id or "").current_spend == Decimal("11")
    service.flush()
    assert len(service.list_audit(kind="bypass")) == 20  # every bypass is audited
    assert [a.event.type for a in service.list_alerts()].count("bypass") == 1  # and alerted once


@pytest.mark.parametrize("fraction", ["0", "0.25"])
def test_bypass_reservations_never_pass_the_allowance(service_factory: ServiceFactory, fraction: str) -> None:
    service = service_factory(**NO_BASE)
    policy = EnforcementPolicy(max_bypass_fraction=Decimal(fraction))
    service.create_budget(Budget(tenant_id="acme", amount=Decimal(4), period=MONTH, enforcement_policy=policy))
    service.process_job_cost(costing("base", "4"))
    admitted = [service.admit("acme", "q", priority=9, estimated_cost=Decimal("0.1")) for _ in range(30)]
    held = [a for a in admitted if a.reservation_id is not None]
    # open reservations count: at most the allowance is held, whatever the number of admissions
    assert len(held) == int(Decimal(4) * Decimal(fraction) / Decimal("0.1"))
    assert all(a.action.bypass for a in held)
    assert not any(a.allowed for a in admitted[len(held) :])
    assert service.admit("acme", "q", priority=5, estimated_cost=Decimal("0.1")).reservation_id is None


def test_bypass_fraction_is_validated() -> None:
    for bad in (Decimal("-0.1"), Decimal("1.5"), Decimal("NaN"), "0.1", True):
        with pytest.raises(ValidationError) as raised:
            EnforcementPolicy(max_bypass_fraction=bad)  # type: ignore[arg-type]
        assert raised.value.field == "enforcement_policy.max_bypass_fraction"
    assert EnforcementPolicy(max_bypass_fraction=Decimal("-0")).max_bypass_fraction == 0
    assert EnforcementPolicy().max_bypass_fraction == Decimal("0.1")


# -- splitting work, zero-resource jobs ------------------------------------------------


def test_splitting_over_job_ids_and_queues_does_not_dodge_a_tenant_wide_budget(service_factory: ServiceFactory) -> None:
    service = service_factory(**NO_BASE)
    budget = service.create_budget(Budget(tenant_id="acme", amount=Decimal(1), period=MONTH))
    # 1,000 tiny jobs of $0.001, each with its own id, over 100 queues
    service.process_job_costs([costing(f"j{i}", "0.001", queue=f"q{i % 100}") for i in range(1000)])
    status = service.get_budget_status(budget.id or "")
    assert status.current_spend == Decimal(1) and status.action.type == "block"
    for queue in ("q0", "q99", "never-seen-before", ""):
        assert service.check_budget_compliance("acme", queue).type == "block"
    assert service.admit("acme", "brand-new", estimated_cost=Decimal("1e-9")).reservation_id is None


def test_jobs_reported_with_no_resources_still_pay_the_base_cost(service_factory: ServiceFactory) -> None:
    service = service_factory()  # the design document's prices: $0.001 per job
    model = service.get_cost_model()
    base = model.base_job_weight * model.environment_multiplier
    assert base > 0
    budget = service.create_budget(Budget(tenant_id="acme", amount=Decimal(1), period=MONTH))
    costs = service.process_job_costs([job(f"z{i}", queue=f"q{i % 7}") for i in range(1000)])
    assert all(c.total_cost == base and c.cost_breakdown.base_cost == base for c in costs)
    assert service.get_budget_status(budget.id or "").current_spend == base * 1000
    assert service.check_budget_compliance("acme", "q0").type == "block"


# -- under-reporting is visible ----------------------------------------------------------


def _platform(service: BudgetService) -> None:
    """Five tenants with jobs alike in memory; ``sly`` reports a tenth of its CPU
    time and ``ghost`` none at all."""
    day = datetime(2024, 1, 10, tzinfo=UTC)
    cpu = {"a": "600", "b": "500", "c": "700", "sly": "60", "ghost": "0"}
    batch = [
        JobMetrics(
            job_id=f"{tenant}-{i}",
            tenant_id=tenant,
            queue_name="q",
            cpu_time=Decimal(seconds),
            memory_mb_seconds=Decimal(2_000_000),
            payload_bytes=Decimal(0),
            redis_ops=Decimal(0),
            network_bytes=Decimal(0),
            timestamp=day,
        )
        for tenant, seconds in cpu.items()
        for i in range(20)
    ]
    service.process_job_costs(batch)


def _advice(service: BudgetService, tenant: str) -> str:
    return "\n".join(service.generate_report(tenant, BudgetPeriod("monthly")).recommendations)


def test_cost_per_cpu_hour_outliers_appear_in_the_report(service_factory: ServiceFactory) -> None:
    service = service_factory()
    _platform(service)
    assert "per CPU-hour" in _advice(service, "sly") and "report CPU time in full" in _advice(service, "sly")
    assert "report no CPU time at all" in _advice(service, "ghost")
    for honest in ("a", "b", "c"):
        assert "CPU-hour" not in _advice(service, honest), honest
    # no other tenant is named in a tenant's report
    text = _advice(service, "sly")
    assert "ghost" not in text and "a-" not in text


def test_calibration_drift_appears_in_the_report(service_factory: ServiceFactory) -> None:
    service = service_factory()
    _platform(service)
    assert "calibration" not in _advice(service, "a")
    model = service.get_cost_model()
    dearer = CostModel.from_mapping(  # real bills 50 % higher than the model charges
        {k: v if k == "environment_multiplier" else v * Decimal("1.5") for k, v in model.to_mapping().items()}
    )
    run_calibration(service, make_benchmarks(5, 80, model=dearer, noise=0.01), apply=False)
    text = _advice(service, "a")
    assert "charges 33 % less than the real bills" in text and "calibrate --apply" in text
    run_calibration(service, make_benchmarks(5, 80, model=dearer, noise=0.01), apply=True)
    assert "calibration" not in _advice(service, "a")  # applied: the model in force is the calibrated one
