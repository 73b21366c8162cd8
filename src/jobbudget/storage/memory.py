"""An in-memory store with the same contract as the SQL one (tests, quick experiments)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from ..domain.aggregation import DailyDelta, daily_deltas, spend_deltas
from ..domain.alerts import AlertEvent, AlertPlan
from ..domain.budget import Budget
from ..domain.cost import COMPONENTS, CostBreakdown, CostModel, JobCost
from ..domain.errors import ConflictError, NotFoundError
from ..domain.estimation import UsageStats
from ..domain.money import ZERO
from ..domain.records import (
    AuditEntry,
    CostModelVersion,
    DailyCost,
    ForecastSnapshot,
    JobRecord,
    PruneResult,
    RecordResult,
    SpendKey,
    average,
    nearest_rank_p95,
)
from .memory_keys import MemoryKeys
from .memory_outbox import MemoryOutbox
from .memory_platform import MemoryPlatform
from .memory_reservations import MemoryReservations

__all__ = ["MemoryStore"]


class MemoryStore(MemoryOutbox, MemoryKeys, MemoryReservations, MemoryPlatform):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[tuple[str, str], JobRecord] = {}
        self._daily: dict[tuple[str, str, date], DailyCost] = {}
        self._budgets: dict[str, Budget] = {}
        self._spend: dict[SpendKey, Decimal] = {}
        self._models: list[CostModelVersion] = []
        self._audit: list[AuditEntry] = []
        self._pruned_before: date | None = None
        self._snapshots: dict[tuple[str, date], ForecastSnapshot] = {}
        self._commits = 0  # batches of jobs recorded: what a change feed watches
        self._budget_seq = 0  # changes to budgets, the tree and raises
        self.announce_changes = True  # one process: its feed always sees every batch
        self.alerts_after_commit = False
        self._outbox_init()
        self._keys_init()
        self._reservations_init()
        self._platform_init()

    def migrate(self) -> None:
        return None

    def close(self) -> None:
        return None

    def ping(self) -> None:
        return None

    def changes(self) -> _MemoryChanges:
        return _MemoryChanges(self)

    def latest_cost_model(self) -> CostModelVersion | None:
        return self._models[-1] if self._models else None

    def add_cost_model(self, model: CostModel, *, created_at: datetime, created_by: str) -> CostModelVersion:
        with self._lock:
            version = CostModelVersion(len(self._models) + 1, model, created_at, created_by)
            self._models.append(version)
            self._audit.append(
                AuditEntry(at=created_at, kind="cost_model", actor=created_by, details={"version": version.version})
            )
            return version

    def list_cost_models(self) -> list[CostModelVersion]:
        return list(self._models)

    def add_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None:
        with self._lock:
            assert budget.id is not None
            if budget.id in self._budgets:
                raise ConflictError(f"budget {budget.id} exists")
            self._budgets[budget.id] = budget
            self._budget_seq += 1
            self._spend.update(seed)
            self._audit.append(audit)

    def save_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None:
        with self._lock:
            if budget.id not in self._budgets:
                raise NotFoundError("budget", str(budget.id))
            self._budgets[budget.id] = replace(budget, created_at=self._budgets[budget.id].created_at)
            self._budget_seq += 1
            self._spend.update(seed)
            self._audit.append(audit)

    def get_budget(self, budget_id: str) -> Budget:
        try:
            return self._budgets[budget_id]
        except KeyError:
            raise NotFoundError("budget", budget_id) from None

    def list_budgets(self, *, tenant_id: str | None = None, include_inactive: bool = False) -> list[Budget]:
        found = [
            b
            for b in self._budgets.values()
            if (tenant_id is None or b.tenant_id == tenant_id) and (include_inactive or b.active)
        ]
        return sorted(found, key=lambda b: (b.tenant_id, b.queue_name, b.created_at or datetime.min))

    def budget_token(self) -> str:
        with self._lock:
            return str(self._budget_seq)

    def budget_versions(self) -> list[tuple[str, datetime | None, bool]]:
        with self._lock:
            found = sorted((str(b.id), b.updated_at, b.active) for b in self._budgets.values())
        return found

    def load_spend(self, keys: Sequence[SpendKey]) -> dict[SpendKey, Decimal]:
        return {k: self._spend[k] for k in keys if k in self._spend}

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
        tenants = {tenant_id, *tenant_ids}
        wanted = (labels or {}).items()
        with self._lock:
            total = sum(
                (
                    r.cost.total_cost
                    for r in self._jobs.values()
                    if r.metrics.tenant_id in tenants
                    and (not queue_name or r.metrics.queue_name == queue_name)
                    and start <= r.timestamp < end
                    and wanted <= r.metrics.labels.items()
                    # days before the prune cutoff are counted from the daily rows below
                    and (self._pruned_before is None or r.day >= self._pruned_before)
                ),
                ZERO,
            )
            if self._pruned_before and start.date() < self._pruned_before and not labels:
                total += sum(
                    (
                        d.total_cost
                        for d in self._daily.values()
                        if d.tenant_id in tenants
                        and (not queue_name or d.queue_name == queue_name)
                        and start.date() <= d.date < min(self._pruned_before, end.date())
                    ),
                    ZERO,
                )
            return total

    def record_jobs(self, records: Sequence[JobRecord], *, plan: AlertPlan | None = None) -> RecordResult:
        with self._lock:
            inserted: list[bool] = []
            new: list[JobRecord] = []
            new_keys: set[tuple[str, str]] = set()
            existing: dict[tuple[str, str], JobCost] = {}
            for r in records:
                key = (r.metrics.tenant_id, r.metrics.job_id)
                if key in self._jobs:
                    inserted.append(False)
                    if key not in new_keys:
                        existing[key] = replace(
                            self._jobs[key].cost, duplicate=True, timestamp=self._jobs[key].timestamp
                        )
                    continue
                self._jobs[key] = r
                new.append(r)
                new_keys.add(key)
                inserted.append(True)
            for (t, q, d), delta in daily_deltas(new).items():
                old = self._daily.get((t, q, d))
                total = delta.total_cost + (old.total_cost if old else ZERO)
                jobs = delta.total_jobs + (old.total_jobs if old else 0)
                self._daily[(t, q, d)] = DailyCost(
                    tenant_id=t,
                    queue_name=q,
                    date=d,
                    total_jobs=jobs,
                    total_cost=total,
                    breakdown=old.breakdown + _breakdown(delta) if old else _breakdown(delta),
                    avg_job_cost=average(total, jobs),
                    max_job_cost=max(delta.max_job_cost, old.max_job_cost) if old else delta.max_job_cost,
                    min_job_cost=min(delta.min_job_cost, old.min_job_cost) if old else delta.min_job_cost,
                    p95_job_cost=ZERO,
                )
            if new:
                self._commits += 1
            changed: dict[tuple[str, date], Decimal] = {}
            for spend_key, (spend, _jobs) in spend_deltas(new).items():
                self._spend[spend_key] = self._spend.get(spend_key, ZERO) + spend
                if plan is not None and spend_key.budget_id in plan.rules:
                    changed[(spend_key.budget_id, spend_key.period_start)] = self._spend[spend_key]
            events: list[AlertEvent] = []
            fired: frozenset[tuple[str, str, date]] = frozenset()
            if plan is not None and changed:
                planned = plan.events_for(changed)
                events = self._insert_alerts(planned, plan.now)
                fired = frozenset((p.event.budget_id, p.event.type, p.event.period_start) for p in planned)
            return RecordResult(inserted=inserted, existing=existing, alerts=tuple(events), fired=fired)

    def get_job(self, tenant_id: str, job_id: str) -> JobCost | None:
        record = self._jobs.get((tenant_id, job_id))
        return replace(record.cost, duplicate=True, timestamp=record.timestamp) if record else None

    def usage_stats(self, *, job_type: str, tenant_id: str | None) -> UsageStats:
        stats = UsageStats()
        for r in self._jobs.values():
            m = r.metrics
            if m.job_type == job_type and (tenant_id is None or m.tenant_id == tenant_id):
                stats.add(
                    cpu_time=m.cpu_time,
                    memory_mb_seconds=m.memory_mb_seconds,
                    redis_ops=m.redis_ops,
                    network_bytes=m.network_bytes,
                )
        return stats

    def daily_costs(
        self, *, tenant_id: str | None, queue_name: str | None, start: date, end: date, exact_stats: bool = True
    ) -> list[DailyCost]:
        with self._lock:
            out = []
            for (t, q, d), row in sorted(self._daily.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
                if start <= d <= end and tenant_id in (None, t) and queue_name in (None, q):
                    costs = [
                        r.cost.total_cost
                        for r in self._jobs.values()
                        if r.day == d and r.metrics.tenant_id == t and r.metrics.queue_name == q
                    ]
                    if costs and exact_stats:
                        row = replace(row, p95_job_cost=nearest_rank_p95(costs))
                        self._daily[(t, q, d)] = row
                    out.append(row)
            return out

    def prune(self, *, raw_before: date, daily_before: date) -> PruneResult:
        with self._lock:
            self.daily_costs(tenant_id=None, queue_name=None, start=date.min, end=raw_before)
            old = [k for k, r in self._jobs.items() if r.day < raw_before]
            for k in old:
                del self._jobs[k]
            days = [k for k in self._daily if k[2] < daily_before]
            for k2 in days:
                del self._daily[k2]
            if self._pruned_before is None or raw_before > self._pruned_before:
                self._pruned_before = raw_before
            return PruneResult(jobs_deleted=len(old), daily_rows_deleted=len(days))

    def save_forecast_snapshot(self, snapshot: ForecastSnapshot) -> bool:
        with self._lock:
            key = (snapshot.budget_id, snapshot.period_start)
            if key in self._snapshots:
                return False
            self._snapshots[key] = snapshot
            return True

    def close_forecast_snapshot(
        self, *, budget_id: str, period_start: date, actual_spend: Decimal, closed_at: datetime
    ) -> None:
        with self._lock:
            key = (budget_id, period_start)
            if key not in self._snapshots:
                raise NotFoundError("forecast snapshot", f"{budget_id}@{period_start}")
            self._snapshots[key] = replace(self._snapshots[key], actual_spend=actual_spend, closed_at=closed_at)

    def list_forecast_snapshots(
        self, *, budget_id: str | None = None, closed: bool | None = None, limit: int = 1000
    ) -> list[ForecastSnapshot]:
        found = [
            s
            for s in self._snapshots.values()
            if budget_id in (None, s.budget_id) and closed in (None, s.closed_at is not None)
        ]
        return sorted(found, key=lambda s: (s.period_start, s.budget_id), reverse=True)[:limit]

    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        with self._lock:
            self._audit.extend(entries)

    def list_audit(
        self, *, tenant_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        found = [e for e in reversed(self._audit) if tenant_id in (None, e.tenant_id) and kind in (None, e.kind)]
        return found[:limit]


class _MemoryChanges:
    """Commits to a store that several services share (tests): any batch recorded
    since the last look, this service's own included."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._seen = -1

    def changed(self) -> bool:
        commits = self._store._commits
        if commits == self._seen:
            return False
        self._seen = commits
        return True

    def close(self) -> None:
        return None


def _breakdown(delta: DailyDelta) -> CostBreakdown:
    return CostBreakdown(*(getattr(delta, name) for name in COMPONENTS))
