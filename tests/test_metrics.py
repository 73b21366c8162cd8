"""Prometheus metrics from a real service (memory store), read back from the text
exposition with prometheus-client's own parser."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.domain.errors import StorageUnavailableError
from jobbudget.domain.records import ForecastSnapshot
from jobbudget.metrics import PrometheusMetrics
from jobbudget.storage.memory import MemoryStore

GAUGES = (
    "jobbudget_active_budgets",
    "jobbudget_forecast_accuracy_ratio",
    "jobbudget_cost_model_drift_ratio",
    "jobbudget_shared_state_available",
    "jobbudget_shared_state_drift_dollars",
)


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def gauges(metrics: PrometheusMetrics) -> dict[str, list[float]]:
    """Each gauge family in the exposition with its samples' values (none: unknown)."""
    families = text_string_to_metric_families(metrics.exposition().decode())
    return {f.name: [s.value for s in f.samples] for f in families if f.name in GAUGES}


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
        "import sys\n"
        "from jobbudget.metrics import PrometheusMetrics\n"
        "m = PrometheusMetrics()\n"
        "for _ in range(5): m.checked(action='block', bypass=False, seconds=1e-5)\n"
        "m.shared_state(available=sys.argv[1] == 'up')\n"
    )
    for redis in ("up", "down"):
        subprocess.run([sys.executable, "-c", worker, redis], env=env, check=True, timeout=60)
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
    assert values[("jobbudget_shared_state_available", ())] == 0  # the worst worker
    declared = {f.name for f in text_string_to_metric_families(text)}
    assert {"jobbudget_forecast_accuracy_ratio", "jobbudget_cost_model_drift_ratio"} <= declared
    unknown = ("jobbudget_forecast", "jobbudget_cost_model", "jobbudget_active", "jobbudget_shared_state_drift")
    assert not [name for name, _ in values if name.startswith(unknown)]


def test_a_gauge_without_a_known_value_has_no_sample(clock: FakeClock) -> None:
    """No forecast has closed, no calibration ran, there is no Redis: those gauges are
    declared at most, never 0 (which would read as "all forecasts wrong", "Redis down")."""
    metrics = PrometheusMetrics()
    assert gauges(metrics) == {
        "jobbudget_active_budgets": [],  # not bound to a service: not known either
        "jobbudget_forecast_accuracy_ratio": [],
        "jobbudget_cost_model_drift_ratio": [],
    }
    for shared_state in ("memory", "database"):
        metrics = PrometheusMetrics()
        config = Config(shared_state=shared_state)
        with BudgetService(config, clock=clock, store=MemoryStore(), metrics=metrics) as service:
            metrics.bind(service)
            assert gauges(metrics) == {
                "jobbudget_active_budgets": [0.0],  # known: no budget is active
                "jobbudget_forecast_accuracy_ratio": [],
                "jobbudget_cost_model_drift_ratio": [],
            }


def test_redis_gauges_appear_once_known() -> None:
    metrics = PrometheusMetrics()
    metrics.shared_state(available=False)
    assert gauges(metrics)["jobbudget_shared_state_available"] == [0.0]
    assert "jobbudget_shared_state_drift_dollars" not in gauges(metrics)  # no reconciliation yet
    metrics.shared_state(available=True)
    metrics.drift(amount=Decimal("0.25"))
    found = gauges(metrics)
    assert found["jobbudget_shared_state_available"] == [1.0]
    assert found["jobbudget_shared_state_drift_dollars"] == [0.25]


def test_forecast_accuracy_once_a_forecast_closed(clock: FakeClock) -> None:
    metrics = PrometheusMetrics()
    with BudgetService(Config(), clock=clock, store=MemoryStore(), metrics=metrics) as service:
        metrics.bind(service)
        budget = service.create_budget(Budget(tenant_id="t1", amount=Decimal(100), period=BudgetPeriod("monthly")))
        assert budget.id is not None
        start = date(2023, 12, 1)
        snapshot = ForecastSnapshot(
            budget_id=budget.id, period_start=start, period_end=date(2023, 12, 31), as_of=date(2023, 12, 16),
            predicted_spend=Decimal(90), lower_80=Decimal(80), upper_80=Decimal(100), lower_95=Decimal(70),
            upper_95=Decimal(110), method="test", created_at=clock.now - timedelta(days=30),
        )  # fmt: skip
        service.store.save_forecast_snapshot(snapshot)
        assert gauges(metrics)["jobbudget_forecast_accuracy_ratio"] == []  # open: not known yet
        service.store.close_forecast_snapshot(
            budget_id=budget.id, period_start=start, actual_spend=Decimal(100), closed_at=clock.now
        )
        assert gauges(metrics)["jobbudget_forecast_accuracy_ratio"] == [pytest.approx(0.9)]  # 10 % off


def test_scrape_gauges_have_no_sample_while_the_database_is_down(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = PrometheusMetrics()
    with BudgetService(Config(), clock=clock, store=MemoryStore(), metrics=metrics) as service:
        metrics.bind(service)
        metrics.checked(action="allow", bypass=False, seconds=1e-5)

        def down(*args: object, **kwargs: object) -> list[object]:
            raise StorageUnavailableError("database unavailable")

        monkeypatch.setattr(service, "list_forecast_snapshots", down)
        monkeypatch.setattr(service, "active_budget_states", down)
        found = gauges(metrics)
        assert found["jobbudget_active_budgets"] == [] and found["jobbudget_forecast_accuracy_ratio"] == []
        assert samples(metrics)[("jobbudget_budget_checks_total", (("action", "allow"),))] == 1  # the rest is served
