"""Prometheus metrics: the design document's ``BudgetMetrics`` as real metrics.

| metric | type | meaning |
| --- | --- | --- |
| ``jobbudget_active_budgets`` | gauge | active budgets |
| ``jobbudget_budget_checks_total{action}`` | counter | admission checks by answer (allow, warn, throttle, block, bypass) |
| ``jobbudget_check_duration_seconds`` | histogram | time of one admission check |
| ``jobbudget_cost_calculation_duration_seconds`` | histogram | pricing time per job (observed once per batch: the batch's time / jobs) |
| ``jobbudget_budget_warnings_total`` | counter | checks answered ``warn`` |
| ``jobbudget_budget_throttles_total`` | counter | checks answered ``throttle`` |
| ``jobbudget_budget_blocks_total`` | counter | checks answered ``block`` |
| ``jobbudget_spend_tracked_dollars_total{tenant}`` | counter | spend of newly stored jobs; at most ``metrics_max_tenants`` tenant labels, the rest summed under ``other`` |
| ``jobbudget_cost_savings_dollars_total`` | counter | estimated cost of work blocked (a job's mean cost in that queue) or deferred by throttling (that cost × (1 − factor)) |
| ``jobbudget_forecast_accuracy_ratio`` | gauge | 1 − mean absolute error of the closed mid-period forecasts (last 100) |
| ``jobbudget_cost_model_drift_ratio`` | gauge | the latest calibration's drift (positive: the model overcharges) |
| ``jobbudget_shared_state_available`` | gauge | 1 while the shared hot state (Redis) answers, 0 while ``redis_failure_mode`` decides (only meaningful with ``redis_url``) |
| ``jobbudget_shared_state_drift_dollars`` | gauge | largest difference between Redis spend and the ledger at the last reconciliation |

Several uvicorn workers: set ``PROMETHEUS_MULTIPROC_DIR`` (``jobbudget serve --workers N``
does) and every process writes its samples there; ``/metrics`` then merges them:
counters and histograms summed, gauges over the live processes only (``livemax``;
``livemin`` for ``jobbudget_shared_state_available``, so one worker without Redis
shows as 0).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

if TYPE_CHECKING:
    from .service import BudgetService

__all__ = ["CONTENT_TYPE", "PrometheusMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CHECK_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1)
_PRICE_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 1e-3)


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
        mode = {"multiprocess_mode": "livemax"} if self.multiprocess else {}
        worst = {"multiprocess_mode": "livemin"} if self.multiprocess else {}
        self.active_budgets = Gauge("jobbudget_active_budgets", "Active budgets", registry=r, **mode)  # type: ignore[arg-type]
        self.forecast_accuracy = Gauge(
            "jobbudget_forecast_accuracy_ratio",
            "1 - mean absolute error of closed forecasts",
            registry=r,
            **mode,  # type: ignore[arg-type]
        )
        self.model_drift = Gauge(
            "jobbudget_cost_model_drift_ratio",
            "Latest calibration drift of the cost model",
            registry=r,
            **mode,  # type: ignore[arg-type]
        )
        self.shared_available = Gauge(
            "jobbudget_shared_state_available",
            "1 while the shared hot state (Redis) answers, 0 while the failure mode decides",
            registry=r,
            **worst,  # type: ignore[arg-type]
        )
        self.shared_drift = Gauge(
            "jobbudget_shared_state_drift_dollars",
            "Largest difference between Redis spend and the ledger at the last reconciliation",
            registry=r,
            **mode,  # type: ignore[arg-type]
        )
        self._refreshers: list[Callable[[], None]] = []

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
        self.shared_available.set(1 if available else 0)

    def drift(self, *, amount: Decimal) -> None:
        self.shared_drift.set(float(amount))

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
        """Set the gauges from ``service`` at every scrape: active budgets, the
        accuracy of closed mid-period forecasts and the latest calibration drift."""

        def refresh() -> None:
            from .analytics.calibration import latest_calibration

            self.active_budgets.set(len(list(service.active_budget_states())))
            errors = [
                abs(s.error) for s in service.list_forecast_snapshots(closed=True, limit=100) if s.error is not None
            ]
            if errors:
                self.forecast_accuracy.set(max(0.0, 1.0 - float(sum(errors)) / len(errors)))
            calibration = latest_calibration(service.store)
            if calibration is not None:
                self.model_drift.set(calibration.drift)

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
            return generate_latest(merged)
        return generate_latest(self.registry)
