"""What the service needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from .domain.adjustments import Adjustment, BudgetRaise
from .domain.alerts import Alert, AlertEvent, AlertPlan, PendingDelivery, PlannedAlert
from .domain.apikeys import ApiKey
from .domain.budget import Budget
from .domain.cost import CostModel, JobCost
from .domain.estimation import UsageStats
from .domain.hierarchy import TreeNode
from .domain.records import (
    AuditEntry,
    CostModelVersion,
    DailyCost,
    ForecastSnapshot,
    JobRecord,
    PruneResult,
    RecordResult,
    Reservation,
    SpendKey,
)

__all__ = [
    "AuditLog",
    "ChangeFeed",
    "Clock",
    "KeyStore",
    "Ledger",
    "MetricsSink",
    "NullMetrics",
    "Outbox",
    "ReservationStore",
    "SharedState",
    "SnapshotStore",
    "Store",
    "StoreLifecycle",
]

#: Returns the current time as an aware UTC datetime.
Clock = Callable[[], datetime]


class ChangeFeed(Protocol):
    """Whether another writer committed to the store since the last look (cheap
    enough to ask at every admission check)."""

    def changed(self) -> bool: ...
    def close(self) -> None: ...


class StoreLifecycle(Protocol):
    """Opening, upgrading and closing the database."""

    #: announce each commit of spend on the change feed (for processes without a
    #: shared state); off where every process reads spend from a shared state
    announce_changes: bool
    #: a batch's alerts may follow its commit, and concurrent writers may cross a
    #: threshold together unseen (PostgreSQL's spend shards): the service then sweeps
    alerts_after_commit: bool

    def migrate(self) -> None: ...
    def close(self) -> None: ...
    def ping(self) -> None: ...
    def changes(self) -> ChangeFeed:
        """A feed of other writers' commits (SQLite: ``PRAGMA data_version``;
        PostgreSQL: LISTEN/NOTIFY); closed with the store."""
        ...


class Ledger(Protocol):
    """The record: cost-model versions, budgets and their spend per period, priced
    jobs and their daily aggregates."""

    # cost models
    def latest_cost_model(self) -> CostModelVersion | None: ...
    def add_cost_model(self, model: CostModel, *, created_at: datetime, created_by: str) -> CostModelVersion: ...
    def list_cost_models(self) -> list[CostModelVersion]: ...

    # budgets and their spend per period
    def add_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None: ...
    def save_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None: ...
    def get_budget(self, budget_id: str) -> Budget: ...
    def list_budgets(self, *, tenant_id: str | None = None, include_inactive: bool = False) -> list[Budget]: ...
    def budget_token(self) -> str:
        """Changes whenever a budget, the tree or a raise is stored (what other
        processes poll to notice them)."""
        ...

    def budget_versions(self) -> list[tuple[str, datetime | None, bool]]:
        """(id, updated_at, active) of every budget, sorted by id: what changes when any
        budget is created, changed or deactivated (cheaper than :meth:`list_budgets`)."""
        ...

    def load_spend(self, keys: Sequence[SpendKey]) -> dict[SpendKey, Decimal]: ...
    def compute_spend(
        self,
        *,
        tenant_id: str,
        queue_name: str,
        start: datetime,
        end: datetime,
        labels: Mapping[str, str] | None = None,
        tenant_ids: Collection[str] = (),
    ) -> Decimal:
        """``tenant_ids``: more tenants counted with ``tenant_id`` (a team's subtree)."""
        ...

    # jobs and aggregates
    def record_jobs(self, records: Sequence[JobRecord], *, plan: AlertPlan | None = None) -> RecordResult: ...
    def get_job(self, tenant_id: str, job_id: str) -> JobCost | None: ...
    def usage_stats(self, *, job_type: str, tenant_id: str | None) -> UsageStats: ...
    def daily_costs(
        self, *, tenant_id: str | None, queue_name: str | None, start: date, end: date, exact_stats: bool = True
    ) -> list[DailyCost]: ...
    def prune(self, *, raw_before: date, daily_before: date) -> PruneResult: ...


class SnapshotStore(Protocol):
    """Forecast accuracy: each period's mid-period forecast and its outcome."""

    def save_forecast_snapshot(self, snapshot: ForecastSnapshot) -> bool: ...
    def close_forecast_snapshot(
        self, *, budget_id: str, period_start: date, actual_spend: Decimal, closed_at: datetime
    ) -> None: ...
    def list_forecast_snapshots(
        self, *, budget_id: str | None = None, closed: bool | None = None, limit: int = 1000
    ) -> list[ForecastSnapshot]: ...


class Outbox(Protocol):
    """Alerts and the delivery outbox."""

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


class KeyStore(Protocol):
    """API keys (only their SHA-256 digests are stored)."""

    def add_api_key(self, key: ApiKey, *, key_hash: str) -> None: ...
    def find_api_key(self, key_hash: str) -> ApiKey | None: ...
    def list_api_keys(self) -> list[ApiKey]: ...
    def revoke_api_key(self, key_id: str, *, at: datetime) -> None: ...


class ReservationStore(Protocol):
    """Reservations: admissions shared through the database."""

    def reserve(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> bool: ...
    def release_reservation(self, reservation_id: str, *, tenant_id: str | None = None) -> bool: ...
    def spend_totals(self, keys: Sequence[SpendKey], *, now: datetime) -> list[tuple[Decimal, Decimal]]: ...
    def count_reservations(self, *, now: datetime) -> int: ...
    def expire_reservations(self, *, now: datetime) -> int: ...


class ResourceTotals(Protocol):
    def resource_totals(
        self, *, tenant_ids: Collection[str], start: date, end: date, queue_name: str | None = None
    ) -> list[tuple[str, Decimal, Decimal]]:
        """(resource, quantity, cost) of the jobs of ``tenant_ids`` (in ``queue_name``
        when given) on the UTC days ``start..end``, each summed exactly."""
        ...


class PlatformStore(Protocol):
    """The organisation tree, adjustments (refunds, credits, debits) and raises."""

    def load_tree(self) -> list[TreeNode]: ...
    def set_parent(self, node: str, parent: str, *, at: datetime, audit: AuditEntry) -> None: ...
    def add_adjustments(self, items: Sequence[Adjustment], *, audit: Sequence[AuditEntry]) -> list[bool]:
        """Store the new ones (by id) and add each to the spend of its ``keys``, in one
        transaction; which were new."""
        ...

    def list_adjustments(
        self, *, tenant_ids: Collection[str] | None = None, start: date, end: date
    ) -> list[Adjustment]: ...
    def add_raise(self, item: BudgetRaise, *, audit: AuditEntry) -> None: ...
    def list_raises(self, *, budget_id: str | None = None) -> list[BudgetRaise]: ...


class AuditLog(Protocol):
    """The audit trail."""

    def add_audit(self, entries: Sequence[AuditEntry]) -> None: ...
    def list_audit(
        self, *, tenant_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AuditEntry]: ...


class Store(
    StoreLifecycle,
    Ledger,
    SnapshotStore,
    Outbox,
    KeyStore,
    ReservationStore,
    PlatformStore,
    ResourceTotals,
    AuditLog,
    Protocol,
):
    """Durable storage: every role in one database.  Every method that writes is one
    transaction.  Collaborators depend on the roles they use, not on all of it."""


class SharedState(Protocol):
    """Spend and open reservations of budget periods, shared by every process that
    enforces the same budgets (Redis).  The ledger in the Store stays the record:
    this is a hot copy that is rebuilt from it.  ``tenant_id`` comes with each key so
    that a tenant's keys can live together (Redis Cluster hash tags)."""

    def totals(self, keys: Sequence[tuple[str, SpendKey]], *, now: datetime) -> list[Decimal]: ...
    def spends(self, keys: Sequence[tuple[str, SpendKey]]) -> list[Decimal]: ...
    def reserve(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> bool: ...
    def admit(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> tuple[bool, list[Decimal]]:
        """``reserve``, with each period's spend plus reserved before it (Redis: one
        round trip for both)."""
        ...

    def release(self, reservation_id: str, *, tenant_id: str | None = None) -> bool: ...
    def add_spend(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None: ...
    def settle(self, spend: Sequence[tuple[str, SpendKey, Decimal]], holds: Sequence[tuple[str, str]]) -> None:
        """Add a committed batch's spend and drop the holds (reservation id, tenant) it
        settles (Redis: one round trip)."""
        ...

    def load(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None: ...
    def open_reservations(self, now: datetime) -> int: ...


class AbandonedJournal(Protocol):
    """A dead process's journal, held by this process while it is replayed."""

    @property
    def records(self) -> list[JobRecord]: ...
    @property
    def path(self) -> Path: ...
    def done(self) -> None: ...


class Journal(Protocol):
    """A durable write-ahead log of priced jobs (``metering_journal``)."""

    def open(self) -> None: ...
    def append(self, records: Sequence[JobRecord]) -> tuple[int, int]:
        """Durable on return; the position after the records."""
        ...

    def applied(self, position: tuple[int, int]) -> None:
        """Everything up to ``position`` is in the ledger."""
        ...

    def abandoned(self) -> Iterator[AbandonedJournal]: ...
    def close(self) -> None: ...


class MetricsSink(Protocol):
    """Where the service reports what it does (``jobbudget.metrics`` exports it)."""

    def checked(self, *, action: str, bypass: bool, seconds: float) -> None: ...
    def priced(self, *, jobs: int, seconds: float) -> None: ...
    def stored(self, *, tenant_id: str, amount: Decimal) -> None: ...
    def deferred(self, *, amount: Decimal) -> None: ...
    def shared_state(self, *, available: bool) -> None: ...
    def drift(self, *, amount: Decimal) -> None: ...


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

    def shared_state(self, *, available: bool) -> None:
        return None

    def drift(self, *, amount: Decimal) -> None:
        return None
