"""Prometheus metrics from a real service (memory store), read back from the text
exposition with prometheus-client's own parser."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.metrics import PrometheusMetrics
from jobbudget.storage.memory import MemoryStore


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def job(job_id: str, tenant: str, cost: str) -> JobMetrics:
    return JobMetrics(job_id, tenant, "q1", Decimal(cost) * 10_000, 0, 0, 0, 0)  # type: ignore[arg-type]


def test_checks_spend_savings_and_gauges_are_exported(clock: FakeClock) -> None:
    metrics = PrometheusMetrics(max_tenants=2)
    config = Config(cost_model={"cpu_time_weight": "0.0001", "base_job_weight": "0"})
    with BudgetService(config, clock=clock, store=MemoryStore(), metrics=metrics) as service:
        metrics.bind(service)
        service.create_budget(Budget(tenant_id="t1", amount=Decimal(100), period=BudgetPeriod("monthly")))
        service.process_job_costs([job("a", "t1", "40"), job("b", "t1", "40"), job("a", "t1", "40")])  # 1 duplicate
        service.process_job_costs([job("c", "t2", "1.5"), job("d", "t3", "2.25"), job("e", "t4", "1")])
        assert service.check_budget_compliance("t1", "q1").type == "warn"  # 80 %
        service.process_job_cost(job("f", "t1", "25"))  # 105 %: block
        for _ in range(3):
            assert service.check_budget_compliance("t1", "q1").type == "block"
        assert service.check_budget_compliance("t1", "q1", priority=9).bypass
        assert service.check_budget_compliance("t9", "q1").type == "allow"
        found = samples(metrics)
    assert found[("jobbudget_budget_checks_total", (("action", "warn"),))] == 1
    assert found[("jobbudget_budget_checks_total", (("action", "block"),))] == 3
    assert found[("jobbudget_budget_checks_total", (("action", "bypass"),))] == 1
    assert found[("jobbudget_budget_checks_total", (("action", "allow"),))] == 1
    assert found[("jobbudget_budget_blocks_total", ())] == 3
    assert found[("jobbudget_budget_warnings_total", ())] == 1
    assert found[("jobbudget_check_duration_seconds_count", ())] == 6
    # spend counted once per stored job (the duplicate is not), tenants beyond 2 labels summed as "other"
    assert found[("jobbudget_spend_tracked_dollars_total", (("tenant", "t1"),))] == 105
    assert found[("jobbudget_spend_tracked_dollars_total", (("tenant", "t2"),))] == 1.5
    assert found[("jobbudget_spend_tracked_dollars_total", (("tenant", "other"),))] == 3.25
    # three blocked jobs at t1/q1's mean job cost (105 / 3 = 35)
    assert found[("jobbudget_cost_savings_dollars_total", ())] == 105
    assert found[("jobbudget_active_budgets", ())] == 1
    assert found[("jobbudget_cost_calculation_duration_seconds_count", ())] == 3


def test_several_processes_are_merged_in_multiprocess_mode(tmp_path: object) -> None:
    """Two worker processes count checks; the exposition of a third sums them."""
    import subprocess
    import sys

    env = {**__import__("os").environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = (
        "from jobbudget.metrics import PrometheusMetrics\n"
        "m = PrometheusMetrics()\n"
        "for _ in range(5): m.checked(action='block', bypass=False, seconds=1e-5)\n"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    reader = "from jobbudget.metrics import PrometheusMetrics\nprint(PrometheusMetrics().exposition().decode())\n"
    text = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("jobbudget_budget_checks_total", (("action", "block"),))] == 10
    assert values[("jobbudget_budget_blocks_total", ())] == 10
