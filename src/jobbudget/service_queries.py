"""The read-side use cases of :class:`jobbudget.service.BudgetService`: forecasts,
reports, forecast accuracy, daily aggregates, audit trail and retention.  Kept
apart from the write and enforcement paths in ``service.py``; everything here goes
through the store and the pure domain/analytics code."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from .config import Config
from .domain.cost import JobCost
from .domain.periods import BudgetPeriod
from .domain.records import AuditEntry, DailyCost, ForecastSnapshot, PruneResult
from .domain.validation import MAX_JOB_ID_LEN, MAX_TENANT_LEN, check_identifier
from .ports import Store

if TYPE_CHECKING:
    from .analytics.accuracy import SnapshotRun
    from .domain.dashboard import BudgetTrends, Dashboard
    from .domain.forecast_backtest import BacktestResult
    from .domain.forecasting import Forecast
    from .domain.reporting import BudgetReport
    from .service import BudgetService

__all__ = ["QueriesMixin"]


class QueriesMixin:
    """Mixed into BudgetService, which provides ``config``, ``store``, ``now`` and
    ``flush``."""

    config: Config

    @property
    def store(self) -> Store:
        raise NotImplementedError

    def now(self) -> datetime:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def _service(self) -> BudgetService:
        from .service import BudgetService

        assert isinstance(self, BudgetService)
        return self

    # -- analytics (the models live in jobbudget.domain, the use cases in jobbudget.analytics)
    def get_forecast(self, tenant_id: str, queue_name: str = "") -> Forecast:
        """Forecast the current period of the active budget for exactly this scope
        (tenant-wide when ``queue_name`` is empty)."""
        from .analytics.forecasts import get_forecast

        return get_forecast(self._service(), tenant_id=tenant_id, queue_name=queue_name)

    def forecast_accuracy(self, tenant_id: str, queue_name: str = "") -> BacktestResult:
        """Backtest the forecast on this scope's own daily spend of the last year."""
        from .analytics.forecasts import forecast_accuracy

        return forecast_accuracy(self._service(), tenant_id=tenant_id, queue_name=queue_name)

    def record_forecast_snapshots(self) -> SnapshotRun:
        """Keep each budget period's mid-period forecast and, once the period closes,
        its real spend (runs in the background every ``flush_interval``)."""
        from .analytics.accuracy import record_forecast_snapshots

        return record_forecast_snapshots(self._service())

    def list_forecast_snapshots(
        self, *, budget_id: str | None = None, closed: bool | None = None, limit: int = 1000
    ) -> list[ForecastSnapshot]:
        """Recorded mid-period forecasts, newest period first (``error`` once closed)."""
        return self.store.list_forecast_snapshots(budget_id=budget_id, closed=closed, limit=limit)

    def generate_report(self, tenant_id: str, period: BudgetPeriod) -> BudgetReport:
        """Spend, drivers, breakdowns, daily series, forecast and recommendations for a
        tenant over ``period``."""
        from .analytics.reports import generate_report

        return generate_report(self._service(), tenant_id=tenant_id, period=period)

    def dashboard(self, tenant_id: str | None = None, *, top: int = 10) -> Dashboard:
        """Every budget with its status now (inactive ones too) and the ``top`` cost
        drivers of the current UTC month; one tenant's when ``tenant_id`` is given."""
        from .analytics.views import dashboard

        return dashboard(self._service(), tenant_id=tenant_id, top=top)

    def budget_trends(self, budget_id: str, *, days: int = 30) -> BudgetTrends:
        """The budget's daily spend over the last ``days`` days with its daily pace,
        the period's forecast and the cost by component."""
        from .analytics.views import budget_trends

        return budget_trends(self._service(), budget_id=budget_id, days=days)

    # -- reading ------------------------------------------------------------------
    def get_job_cost(self, tenant_id: str, job_id: str) -> JobCost | None:
        check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
        check_identifier("job_id", job_id, max_len=MAX_JOB_ID_LEN)
        return self.store.get_job(tenant_id, job_id)

    def get_daily_costs(
        self,
        tenant_id: str | None = None,
        *,
        queue_name: str | None = None,
        start: date,
        end: date,
        exact_stats: bool = True,
    ) -> list[DailyCost]:
        """Daily aggregates for ``start <= date <= end`` (UTC days); see
        :meth:`jobbudget.ports.Store.daily_costs` for ``exact_stats``."""
        return self.store.daily_costs(
            tenant_id=tenant_id, queue_name=queue_name, start=start, end=end, exact_stats=exact_stats
        )

    def list_audit(
        self, *, tenant_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        self.flush()
        return self.store.list_audit(tenant_id=tenant_id, kind=kind, limit=limit)

    def prune(self) -> PruneResult:
        """Delete per-job rows older than ``raw_retention_days`` and daily rows older
        than ``retention_days`` (exact daily statistics are kept)."""
        today = self.now().date()
        return self.store.prune(
            raw_before=today - timedelta(days=self.config.raw_retention_days),
            daily_before=today - timedelta(days=self.config.retention_days),
        )
