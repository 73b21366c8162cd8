"""The analytics use cases run on the narrow read model, not on BudgetService.

Two checks.  Statically: :func:`as_read_model` and :func:`as_cost_model_owner` are
plain typed returns, no cast; mypy checks this file (it is in ``[tool.mypy] files``,
which a test below keeps so) and rejects them if BudgetService stops satisfying the
Protocols.  At run time: every use case runs on :class:`Only`, a view of a real
service that has the Protocol's members and nothing else (its store likewise has
only the store roles of :class:`AnalyticsStore`), and gives the same answers as the
service's own methods; a use case reaching for anything more fails with
AttributeError."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pytest

from jobbudget.analytics.accuracy import record_forecast_snapshots
from jobbudget.analytics.calibration import latest_calibration, run_calibration
from jobbudget.analytics.forecasts import forecast_accuracy, get_forecast
from jobbudget.analytics.readmodel import AnalyticsStore, CostModelOwner, ReadModel
from jobbudget.analytics.reports import generate_report
from jobbudget.analytics.views import budget_trends, dashboard
from jobbudget.config import Config
from jobbudget.domain.budget import Budget
from jobbudget.domain.calibration import BenchmarkResult
from jobbudget.domain.cost import CostCalculationEngine, CostModel, JobMetrics
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.service import BudgetService

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2024, 1, 20, 12, tzinfo=UTC)


# -- static conformance (mypy) ------------------------------------------------------
def as_read_model(service: BudgetService) -> ReadModel:
    return service


def as_cost_model_owner(service: BudgetService) -> CostModelOwner:
    return service


def test_mypy_checks_this_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert Path(__file__).relative_to(ROOT).as_posix() in config["tool"]["mypy"]["files"]


# -- run time: the use cases see the Protocol's members only ----------------------------
def members(*protocols: type) -> frozenset[str]:
    """The public names the Protocols (and their bases) declare."""
    names: set[str] = set()
    for protocol in protocols:
        for klass in protocol.__mro__:
            if klass is not object and klass is not Protocol and getattr(klass, "_is_protocol", False):
                names.update(n for n in vars(klass) if not n.startswith("_"))
    return frozenset(names)


class Only:
    """``target`` seen through ``allowed`` names; ``store`` is itself restricted."""

    def __init__(self, target: Any, allowed: frozenset[str], store: frozenset[str] | None = None) -> None:
        self._target, self._allowed, self._store = target, allowed, store

    def __getattr__(self, name: str) -> Any:
        if name not in self._allowed:
            raise AttributeError(f"{name!r} is not in the read model")
        value = getattr(self._target, name)
        return Only(value, self._store) if name == "store" and self._store is not None else value


def test_members_are_what_the_protocols_declare() -> None:
    model = members(ReadModel)
    assert {"store", "now", "list_budgets", "get_budget_status", "get_daily_costs", "get_forecast"} <= model
    assert "update_cost_model" not in model and "update_cost_model" in members(CostModelOwner)
    assert "record_jobs" in members(AnalyticsStore) and "add_api_key" not in members(AnalyticsStore)
    with pytest.raises(AttributeError, match="create_budget"):
        _ = Only(object(), model).create_budget


def job(i: int, day: date, queue: str) -> JobMetrics:
    return JobMetrics(
        job_id=f"{queue}-{day}-{i}",
        tenant_id="acme",
        queue_name=queue,
        cpu_time=Decimal(3600 * (1 + i + day.day % 5)),
        memory_mb_seconds=Decimal(1000),
        payload_bytes=Decimal(2048),
        redis_ops=Decimal(10),
        network_bytes=Decimal(4096),
        timestamp=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
    )


def benchmarks(model: CostModel, n: int = 40) -> list[BenchmarkResult]:
    """``n`` jobs whose real cost is 10 % above what ``model`` charges."""
    rng = random.Random(17)
    engine = CostCalculationEngine(model)
    out = []
    for _ in range(n):
        usage: dict[str, Any] = {
            "cpu_time": Decimal(rng.randint(60, 36_000)),
            "memory_mb_seconds": Decimal(rng.randint(1_000, 10**7)),
            "payload_bytes": Decimal(rng.randint(1_000, 10**8)),
            "redis_ops": Decimal(rng.randint(10, 10**5)),
            "network_bytes": Decimal(rng.randint(1_000, 10**9)),
        }
        cost = engine.calculate_breakdown(**usage).total
        out.append(
            BenchmarkResult(
                job_type="batch",
                actual_cost=(cost * Decimal("1.1")).quantize(Decimal("1e-9")),
                calculated_cost=cost,
                infrastructure_cost=Decimal(0),
                timestamp=NOW - timedelta(days=1),
                **usage,
            )
        )
    return out


@pytest.fixture
def service() -> Iterator[BudgetService]:
    with BudgetService(Config(database_url="memory://"), clock=lambda: NOW) as service:
        monthly = BudgetPeriod("monthly")
        service.create_budget(Budget(tenant_id="acme", amount=Decimal(5000), period=monthly))
        service.create_budget(Budget(tenant_id="acme", queue_name="ml", amount=Decimal(900), period=monthly))
        day = date(2023, 11, 1)
        while day < NOW.date():
            service.process_job_costs([job(i, day, q) for i in range(3) for q in ("ml", "etl")])
            day += timedelta(days=1)
        yield service


def test_every_use_case_runs_on_the_read_model_alone(service: BudgetService) -> None:
    view: Any = Only(service, members(ReadModel), members(AnalyticsStore))
    budget_id = str(next(b.id for b in service.list_budgets("acme") if b.queue_name == "ml"))
    assert get_forecast(view, tenant_id="acme") == service.get_forecast("acme")
    assert forecast_accuracy(view, tenant_id="acme", queue_name="ml") == service.forecast_accuracy("acme", "ml")
    january = BudgetPeriod("monthly", start_date=date(2024, 1, 1))
    assert generate_report(view, tenant_id="acme", period=january) == service.generate_report("acme", january)
    assert dashboard(view, tenant_id="acme", top=5) == service.dashboard("acme", top=5)
    assert budget_trends(view, budget_id=budget_id, days=30) == service.budget_trends(budget_id, days=30)
    run = record_forecast_snapshots(view)
    assert run.created == 2 and len(service.list_forecast_snapshots()) == 2  # both budgets are past mid-January


def test_calibration_runs_on_the_cost_model_owner(service: BudgetService) -> None:
    reader: Any = Only(service, members(ReadModel), members(AnalyticsStore))
    with pytest.raises(AttributeError, match="update_cost_model"):  # applying needs the owner
        run_calibration(reader, benchmarks(service.get_cost_model()), apply=True)
    dry = run_calibration(reader, benchmarks(service.get_cost_model()), apply=False)
    assert not dry.applied and dry.cost_model_version == service.get_cost_model_version() == 1
    owner: Any = Only(service, members(CostModelOwner), members(AnalyticsStore))
    applied = run_calibration(owner, benchmarks(service.get_cost_model()), apply=True)
    assert applied.applied and service.get_cost_model_version() == 2 and service.get_cost_model() == applied.model
    assert latest_calibration(owner.store) == applied.record
