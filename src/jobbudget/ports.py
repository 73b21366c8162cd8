"""What the service needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from .domain.alerts import Alert, AlertEvent, AlertPlan, PendingDelivery, PlannedAlert
from .domain.apikeys import ApiKey
from .domain.budget import Budget
from .domain.cost import CostModel, JobCost
from .domain.estimation import UsageStats
from .domain.records import (
    AuditEntry,
    CostModelVersion,
    DailyCost,
    ForecastSnapshot,
    JobRecord,
    PruneResult,
    RecordResult,
    SpendKey,
)

__all__ = ["Clock", "MetricsSink", "NullMetrics", "Store"]

#: Returns the current time as an aware UTC datetime.
Clock = Callable[[], datetime]


class Store(Protocol):
    """Durable storage: the ledger of jobs, daily aggregates, budgets and their
    period spend, cost-model versions and the audit trail.  Every method that
    writes is one transaction."""

    def migrate(self) -> None: ...
    def close(self) -> None: ...
    def ping(self) -> None: ...

    # cost models
    def latest_cost_model(self) -> CostModelVersion | None: ...
    def add_cost_model(self, model: CostModel, *, created_at: datetime, created_by: str) -> CostModelVersion: ...
    def list_cost_models(self) -> list[CostModelVersion]: ...

    # budgets and their spend per period
    def add_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None: ...
    def save_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None: ...
    def get_budget(self, budget_id: str) -> Budget: ...
    def list_budgets(self, *, tenant_id: str | None = None, include_inactive: bool = False) -> list[Budget]: ...
    def load_spend(self, keys: Sequence[SpendKey]) -> dict[SpendKey, Decimal]: ...
    def compute_spend(self, *, tenant_id: str, queue_name: str, start: datetime, end: datetime) -> Decimal: ...

    # jobs and aggregates
    def record_jobs(self, records: Sequence[JobRecord], *, plan: AlertPlan | None = None) -> RecordResult: ...
    def get_job(self, tenant_id: str, job_id: str) -> JobCost | None: ...
    def usage_stats(self, *, job_type: str, tenant_id: str | None) -> UsageStats: ...
    def daily_costs(
        self, *, tenant_id: str | None, queue_name: str | None, start: date, end: date, exact_stats: bool = True
    ) -> list[DailyCost]: ...
    def prune(self, *, raw_before: date, daily_before: date) -> PruneResult: ...

    # forecast accuracy: each period's mid-period forecast and its outcome
    def save_forecast_snapshot(self, snapshot: ForecastSnapshot) -> bool: ...
    def close_forecast_snapshot(
        self, *, budget_id: str, period_start: date, actual_spend: Decimal, closed_at: datetime
    ) -> None: ...
    def list_forecast_snapshots(
        self, *, budget_id: str | None = None, closed: bool | None = None, limit: int = 1000
    ) -> list[ForecastSnapshot]: ...

    # alerts and the delivery outbox
    def add_alerts(self, planned: Sequence[PlannedAlert], *, now: datetime) -> list[AlertEvent]: ...
    def fired_alerts(self, *, since: date) -> set[tuple[str, str, date]]: ...
    def claim_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[PendingDelivery]: ...
    def finish_delivery(
        self,
        delivery_id: int,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None = None,
        last_error: str | None = None,
        sent_at: datetime | None = None,
        digest_id: str | None = None,
    ) -> None: ...
    def count_sent(self, *, channel_key: str, since: datetime) -> int: ...
    def held_deliveries(self, *, limit: int = 1000) -> list[PendingDelivery]: ...
    def requeue_delivery(self, delivery_id: int, *, now: datetime) -> None: ...
    def list_alerts(
        self, *, tenant_id: str | None = None, active_since: date | None = None, limit: int = 500
    ) -> list[Alert]: ...
    def acknowledge_alert(self, alert_id: str, *, by: str, at: datetime) -> None: ...

    # API keys (only their SHA-256 digests are stored)
    def add_api_key(self, key: ApiKey, *, key_hash: str) -> None: ...
    def find_api_key(self, key_hash: str) -> ApiKey | None: ...
    def list_api_keys(self) -> list[ApiKey]: ...
    def revoke_api_key(self, key_id: str, *, at: datetime) -> None: ...

    # audit trail
    def add_audit(self, entries: Sequence[AuditEntry]) -> None: ...
    def list_audit(
        self, *, tenant_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AuditEntry]: ...


class MetricsSink(Protocol):
    """Where the service reports what it does (``jobbudget.metrics`` exports it)."""

    def checked(self, *, action: str, bypass: bool, seconds: float) -> None: ...
    def priced(self, *, jobs: int, seconds: float) -> None: ...
    def stored(self, *, tenant_id: str, amount: Decimal) -> None: ...
    def deferred(self, *, amount: Decimal) -> None: ...


class NullMetrics:
    """Reports nothing (the default): costs one method call per event."""

    def checked(self, *, action: str, bypass: bool, seconds: float) -> None:
        return None

    def priced(self, *, jobs: int, seconds: float) -> None:
        return None

    def stored(self, *, tenant_id: str, amount: Decimal) -> None:
        return None

    def deferred(self, *, amount: Decimal) -> None:
        return None
