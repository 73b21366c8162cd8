"""Prometheus metrics: the design document's ``BudgetMetrics`` as real metrics.

| metric | type | meaning |
| --- | --- | --- |
| ``jobbudget_active_budgets`` | gauge | active budgets (read at scrape) |
| ``jobbudget_budget_checks_total{action}`` | counter | admission checks by answer (allow, warn, throttle, block, bypass) |
| ``jobbudget_check_duration_seconds`` | histogram | time of one admission check |
| ``jobbudget_cost_calculation_duration_seconds`` | histogram | pricing time per job (observed once per batch: the batch's time / jobs) |
| ``jobbudget_budget_warnings_total`` | counter | checks answered ``warn`` |
| ``jobbudget_budget_throttles_total`` | counter | checks answered ``throttle`` |
| ``jobbudget_budget_blocks_total`` | counter | checks answered ``block`` |
| ``jobbudget_spend_tracked_dollars_total{tenant}`` | counter | spend of newly stored jobs; at most ``metrics_max_tenants`` tenant labels, the rest summed under ``other`` |
| ``jobbudget_cost_savings_dollars_total`` | counter | estimated cost of work blocked (a job's mean cost in that queue) or deferred by throttling (that cost × (1 − factor)) |
| ``jobbudget_forecast_accuracy_ratio`` | gauge | 1 − mean absolute error of the closed mid-period forecasts (last 100; read at scrape) |
| ``jobbudget_cost_model_drift_ratio`` | gauge | drift of the cost model in force, as the latest calibration measured it (positive: the model overcharges; read at scrape) |
| ``jobbudget_shared_state_available`` | gauge | with Redis: 1 while it answers, 0 while ``redis_failure_mode`` decides |
| ``jobbudget_shared_state_drift_dollars`` | gauge | largest difference between Redis spend and the ledger at the last reconciliation |

A value that is unknown or does not apply has **no sample** (the family may still be
declared with HELP and TYPE): ``jobbudget_forecast_accuracy_ratio`` before any forecast
closed; ``jobbudget_cost_model_drift_ratio`` before any calibration, and once the model
it measured is no longer in force (the calibration applied its model, or the model
was changed since); the scrape-time gauges while the database cannot be read, and
before :meth:`PrometheusMetrics.bind`; ``jobbudget_shared_state_available`` without
Redis (``shared_state`` ``memory`` or ``database``); ``jobbudget_shared_state_drift_dollars``
until the first reconciliation with Redis.

Several uvicorn workers: set ``PROMETHEUS_MULTIPROC_DIR`` (``jobbudget serve --workers N``
does) and every process writes its samples there; ``/metrics`` then merges them:
counters and histograms summed, the Redis gauges over the live processes only
(``livemax``; ``livemin`` for ``jobbudget_shared_state_available``, so one worker without
Redis shows as 0).  The scrape-time gauges are read from the database by the worker
that answers the scrape.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from .domain.errors import JobBudgetError

if TYPE_CHECKING:
    from .service import BudgetService

__all__ = ["CONTENT_TYPE", "PrometheusMetrics"]

log = logging.getLogger("jobbudget.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CHECK_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1)
_PRICE_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 1e-3)
ACTIVE_BUDGETS = "jobbudget_active_budgets"
FORECAST_ACCURACY = "jobbudget_forecast_accuracy_ratio"
MODEL_DRIFT = "jobbudget_cost_model_drift_ratio"
SHARED_AVAILABLE = "jobbudget_shared_state_available"
SHARED_DRIFT = "jobbudget_shared_state_drift_dollars"
#: The gauges read from the service at scrape, with their help texts.
_SCRAPED = {
    ACTIVE_BUDGETS: "Active budgets",
    FORECAST_ACCURACY: "1 - mean absolute error of closed forecasts",
    MODEL_DRIFT: "Drift of the cost model in force, as the latest calibration measured it",
}


class _ScrapedGauges:
    """A collector of the gauges read at scrape: one sample each while its value is
    known, none (only HELP and TYPE) while it is ``None``."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = dict.fromkeys(_SCRAPED)

    def describe(self) -> Iterator[Metric]:
        for name, help_text in _SCRAPED.items():
            yield GaugeMetricFamily(name, help_text)

    def collect(self) -> Iterator[Metric]:
        for name, help_text in _SCRAPED.items():
            family = GaugeMetricFamily(name, help_text)
            value = self.values.get(name)
            if value is not None:
                family.add_metric([], value)
            yield family


def _read(name: str, read: Callable[[], float | None]) -> float | None:
    """``read()``, or ``None`` (no sample) when the database cannot be read now."""
    try:
        return read()
    except JobBudgetError as exc:
        log.warning("metric %s not known at this scrape: %s", name, exc)
        return None


class PrometheusMetrics:
    """A :class:`jobbudget.ports.MetricsSink` backed by prometheus-client."""

    def __init__(self, *, max_tenants: int = 100, registry: CollectorRegistry | None = None) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._max_tenants = max_tenants
        self._tenants: set[str] = set()
        self._lock = threading.Lock()
        self.checks = Counter("jobbudget_budget_checks_total", "Admission checks by answer", ["action"], registry=r)
        self.warnings = Counter("jobbudget_budget_warnings_total", "Checks answered warn", registry=r)
        self.throttles = Counter("jobbudget_budget_throttles_total", "Checks answered throttle", registry=r)
        self.blocks = Counter("jobbudget_budget_blocks_total", "Checks answered block", registry=r)
        self.check_seconds = Histogram(
            "jobbudget_check_duration_seconds", "Time of one admission check", buckets=_CHECK_BUCKETS, registry=r
        )
        self.price_seconds = Histogram(
            "jobbudget_cost_calculation_duration_seconds",
            "Pricing time per job",
            buckets=_PRICE_BUCKETS,
            registry=r,
        )
        self.spend = Counter(
            "jobbudget_spend_tracked_dollars_total", "Spend of stored jobs in dollars", ["tenant"], registry=r
        )
        self.savings = Counter(
            "jobbudget_cost_savings_dollars_total", "Estimated cost of work blocked or deferred", registry=r
        )
        self.scraped = _ScrapedGauges()
        r.register(self.scraped)
        # Made on first use: a gauge exists (and has a sample) only once its value is known.
        self._shared_available: Gauge | None = None
        self._shared_drift: Gauge | None = None
        self._refreshers: list[Callable[[], None]] = []

    def _gauge(self, name: str, help_text: str, *, worst: bool = False) -> Gauge:
        mode = ("livemin" if worst else "livemax") if self.multiprocess else "all"
        return Gauge(name, help_text, registry=self.registry, multiprocess_mode=mode)  # type: ignore[arg-type]

    # -- the MetricsSink protocol ----------------------------------------------------
    def checked(self, *, action: str, bypass: bool, seconds: float) -> None:
        self.checks.labels("bypass" if bypass else action).inc()
        if action == "warn":
            self.warnings.inc()
        elif action == "throttle":
            self.throttles.inc()
        elif action == "block":
            self.blocks.inc()
        self.check_seconds.observe(seconds)

    def priced(self, *, jobs: int, seconds: float) -> None:
        if jobs:
            self.price_seconds.observe(seconds / jobs)

    def stored(self, *, tenant_id: str, amount: Decimal) -> None:
        self.spend.labels(self._tenant_label(tenant_id)).inc(float(amount))

    def deferred(self, *, amount: Decimal) -> None:
        if amount > 0:
            self.savings.inc(float(amount))

    def shared_state(self, *, available: bool) -> None:
        """Called only where there is a shared state with a failure mode (Redis)."""
        with self._lock:
            if self._shared_available is None:
                self._shared_available = self._gauge(
                    SHARED_AVAILABLE,
                    "1 while the shared hot state (Redis) answers, 0 while the failure mode decides",
                    worst=True,
                )
        self._shared_available.set(1 if available else 0)

    def drift(self, *, amount: Decimal) -> None:
        with self._lock:
            if self._shared_drift is None:
                self._shared_drift = self._gauge(
                    SHARED_DRIFT, "Largest difference between Redis spend and the ledger at the last reconciliation"
                )
        self._shared_drift.set(float(amount))

    def _tenant_label(self, tenant_id: str) -> str:
        if tenant_id in self._tenants:
            return tenant_id
        with self._lock:
            if len(self._tenants) < self._max_tenants:
                self._tenants.add(tenant_id)
                return tenant_id
        return "other"

    # -- gauges read from the service --------------------------------------------------
    def bind(self, service: BudgetService) -> None:
        """Read the scrape-time gauges from ``service`` at every scrape: active
        budgets, the accuracy of closed mid-period forecasts and the cost model drift."""

        def active_budgets() -> float:
            return float(len(list(service.active_budget_states())))

        def forecast_accuracy() -> float | None:
            snapshots = service.list_forecast_snapshots(closed=True, limit=100)
            errors = [abs(s.error) for s in snapshots if s.error is not None]
            return max(0.0, 1.0 - float(sum(errors)) / len(errors)) if errors else None

        def model_drift() -> float | None:
            from .analytics.calibration import latest_calibration

            calibration = latest_calibration(service.store)
            if calibration is None or calibration.applied:
                return None  # never measured, or measured on the model the calibration replaced
            if calibration.cost_model_version != service.get_cost_model_version():
                return None  # the model was changed since
            return calibration.drift

        readers = {ACTIVE_BUDGETS: active_budgets, FORECAST_ACCURACY: forecast_accuracy, MODEL_DRIFT: model_drift}

        def refresh() -> None:
            for name, read in readers.items():
                self.scraped.values[name] = _read(name, read)

        self.on_scrape(refresh)

    def on_scrape(self, refresh: Callable[[], None]) -> None:
        """Run ``refresh`` (which sets the gauges) before every exposition."""
        self._refreshers.append(refresh)

    def exposition(self) -> bytes:
        for refresh in self._refreshers:
            refresh()
        if self.multiprocess:
            merged = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            merged.register(self.scraped)
            return generate_latest(merged)
        return generate_latest(self.registry)
