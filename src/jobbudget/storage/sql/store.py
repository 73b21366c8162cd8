"""The SQL store: one class for SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    and_,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ...domain.alerts import AlertEvent, AlertPlan
from ...domain.budget import Budget
from ...domain.cost import COMPONENTS, CostModel, JobCost
from ...domain.errors import NotFoundError
from ...domain.estimation import UsageStats
from ...domain.extras import decode_extras
from ...domain.money import ZERO
from ...domain.records import (
    AuditEntry,
    CostModelVersion,
    DailyCost,
    ForecastSnapshot,
    JobRecord,
    PruneResult,
    RecordResult,
    SpendKey,
    average,
    p95_rank,
)
from . import bulk, rows
from .changes import BUDGET_SEQ, PostgresChanges, SqliteChanges, bump_budget_seq, mark_spend_changed, notify_channel
from .engine import make_engine, transaction, translate_errors
from .keys import KeysMixin
from .outbox import OutboxMixin, insert_alerts
from .platform import PlatformMixin
from .reservations import ReservationsMixin
from .single import SMALL_BATCH, record_small
from .tables import (
    audit_log,
    budget_spend,
    budgets,
    cost_models,
    daily_costs,
    forecast_snapshots,
    job_costs,
    store_meta,
)
from .types import Money

__all__ = ["SqlStore"]

_CHUNK = 500  # keys per IN (...) list


class SqlStore(OutboxMixin, KeysMixin, ReservationsMixin, PlatformMixin):
    """Storage on SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://...``)."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self.engine = make_engine(url, schema=schema)
        self.token = uuid.uuid4().hex  # names this store's notices of new spend (PostgreSQL)
        self._changes: SqliteChanges | PostgresChanges | None = None
        self.dialect = self.engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        #: tell other processes' change feeds about each commit of spend; a process
        #: with a shared state (whose peers read spend from it) turns this off
        self.announce_changes = True
        self.alerts_after_commit = self.dialect == "postgresql"  # SQLite: one writer, alerts in its transaction

    # -- life cycle -------------------------------------------------------------
    def migrate(self) -> None:
        from .migrate import upgrade

        with translate_errors():
            if self.schema and self.dialect == "postgresql":
                with self.engine.begin() as conn:  # only if missing: a read-only server still opens
                    found = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": self.schema})
                    if found.first() is None:
                        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            upgrade(self.engine)

    def close(self) -> None:
        if self._changes is not None:
            self._changes.close()
        self.engine.dispose()

    def _own_commit(self, seq: int | None) -> None:
        if seq is not None and isinstance(self._changes, SqliteChanges):
            self._changes.own_commit(seq)

    def changes(self) -> SqliteChanges | PostgresChanges:
        if self._changes is None:
            if self.dialect == "sqlite":
                self._changes = SqliteChanges(self.engine.url.database or "")
            else:
                feed = PostgresChanges(self.url, schema=self.schema, token=self.token)
                feed.start()
                self._changes = feed
        return self._changes

    def ping(self) -> None:
        with transaction(self.engine) as conn:
            conn.execute(select(1))

    # -- cost models ------------------------------------------------------------
    def latest_cost_model(self) -> CostModelVersion | None:
        with transaction(self.engine) as conn:
            row = conn.execute(select(cost_models).order_by(cost_models.c.version.desc()).limit(1)).mappings().first()
        return rows.cost_model_from_row(row) if row else None

    def add_cost_model(self, model: CostModel, *, created_at: datetime, created_by: str) -> CostModelVersion:
        with transaction(self.engine, write=True) as conn:
            latest = conn.execute(select(func.max(cost_models.c.version))).scalar()
            version = CostModelVersion((latest or 0) + 1, model, created_at, created_by)
            conn.execute(cost_models.insert().values(rows.cost_model_row(version)))
            self._audit(
                conn,
                [
                    AuditEntry(
                        at=created_at,
                        kind="cost_model",
                        actor=created_by,
                        details={"version": version.version, **rows.cost_model_row(version)["model"]},
                    )
                ],
            )
        return version

    def list_cost_models(self) -> list[CostModelVersion]:
        with transaction(self.engine) as conn:
            result = conn.execute(select(cost_models).order_by(cost_models.c.version)).mappings().all()
        return [rows.cost_model_from_row(r) for r in result]

    # -- budgets ----------------------------------------------------------------
    def add_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None:
        with transaction(self.engine, write=True) as conn:
            conn.execute(budgets.insert().values(rows.budget_row(budget)))
            self._set_spend(conn, seed)
            self._audit(conn, [audit])
            bump_budget_seq(conn)

    def save_budget(self, budget: Budget, *, seed: dict[SpendKey, Decimal], audit: AuditEntry) -> None:
        values = rows.budget_row(budget)
        values.pop("created_at")
        with transaction(self.engine, write=True) as conn:
            done = conn.execute(update(budgets).where(budgets.c.id == budget.id).values(values))
            if done.rowcount == 0:
                raise NotFoundError("budget", str(budget.id))
            self._set_spend(conn, seed)
            self._audit(conn, [audit])
            bump_budget_seq(conn)

    def get_budget(self, budget_id: str) -> Budget:
        with transaction(self.engine) as conn:
            row = conn.execute(select(budgets).where(budgets.c.id == budget_id)).mappings().first()
        if row is None:
            raise NotFoundError("budget", budget_id)
        return rows.budget_from_row(row)

    def list_budgets(self, *, tenant_id: str | None = None, include_inactive: bool = False) -> list[Budget]:
        query = select(budgets).order_by(budgets.c.tenant_id, budgets.c.queue_name, budgets.c.created_at)
        if tenant_id is not None:
            query = query.where(budgets.c.tenant_id == tenant_id)
        if not include_inactive:
            query = query.where(budgets.c.active.is_(True))
        with transaction(self.engine) as conn:
            return [rows.budget_from_row(r) for r in conn.execute(query).mappings()]

    def budget_token(self) -> str:
        """Changes whenever a budget, the tree or a raise is stored (one row read)."""
        query = select(store_meta.c.value).where(store_meta.c.key == BUDGET_SEQ)
        with transaction(self.engine) as conn:
            return str(conn.execute(query).scalar() or "0")

    def budget_versions(self) -> list[tuple[str, datetime | None, bool]]:
        query = select(budgets.c.id, budgets.c.updated_at, budgets.c.active).order_by(budgets.c.id)
        with transaction(self.engine) as conn:
            found = [(i, updated, bool(active)) for i, updated, active in conn.execute(query)]
        return found

    def _set_spend(self, conn: Connection, seed: dict[SpendKey, Decimal]) -> None:
        """Overwrite the spend of periods (recounted): one shard holds it all."""
        if not seed:
            return
        c = budget_spend.c
        for key in seed:
            conn.execute(delete(budget_spend).where(c.budget_id == key.budget_id, c.period_start == key.period_start))
        conn.execute(
            budget_spend.insert(),
            [
                {"budget_id": k.budget_id, "period_start": k.period_start, "spend": v, "jobs": 0, "shard": 0}
                for k, v in seed.items()
            ],
        )

    def load_spend(self, keys: Sequence[SpendKey]) -> dict[SpendKey, Decimal]:
        wanted = set(keys)
        with transaction(self.engine) as conn:
            # budget_id IN (...) searches the primary key (a row-value IN list would make
            # SQLite scan); the few other periods of those budgets are dropped.
            found = bulk.spend_sums(conn, sorted({k.budget_id for k in keys}))
        return {key: spend for key, spend in found.items() if key in wanted}

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
        """Spend of a scope in ``[start, end)`` from the jobs; for days whose jobs were
        pruned, from the daily aggregates (whole UTC days).  With ``labels``: the jobs
        that carry them all (pruned days hold no labels and count nothing).  With
        ``tenant_ids``: those tenants' (a team's), in the same one read."""
        tenants = sorted({tenant_id, *tenant_ids})
        if labels:
            return self._labelled_spend(tenants, queue_name, start, end, labels)
        with transaction(self.engine) as conn:
            pruned = self._pruned_before(conn)
            raw_from = max(start, datetime.combine(pruned, time(0), tzinfo=UTC)) if pruned else start
            query = select(func.sum(job_costs.c.total_cost)).where(
                job_costs.c.tenant_id.in_(tenants),
                job_costs.c.day >= raw_from.date(),
                job_costs.c.day <= end.date(),
                job_costs.c.ts >= raw_from,
                job_costs.c.ts < end,
            )
            if queue_name:
                query = query.where(job_costs.c.queue_name == queue_name)
            total = conn.execute(query).scalar() or ZERO
            if pruned and start.date() < pruned:
                older = select(func.sum(daily_costs.c.total_cost)).where(
                    daily_costs.c.tenant_id.in_(tenants),
                    daily_costs.c.date >= start.date(),
                    daily_costs.c.date < min(pruned, end.date()),
                )
                if queue_name:
                    older = older.where(daily_costs.c.queue_name == queue_name)
                total += conn.execute(older).scalar() or ZERO
        return total

    def _labelled_spend(
        self, tenants: Sequence[str], queue_name: str, start: datetime, end: datetime, labels: Mapping[str, str]
    ) -> Decimal:
        c = job_costs.c
        query = select(c.total_cost, c.extras).where(
            c.tenant_id.in_(tenants), c.day >= start.date(), c.day <= end.date(), c.ts >= start, c.ts < end,
            c.extras != "",
        )  # fmt: skip
        if queue_name:
            query = query.where(c.queue_name == queue_name)
        with transaction(self.engine) as conn:
            found = conn.execute(query).all()
        wanted = labels.items()
        return sum((cost for cost, extras in found if wanted <= decode_extras(extras).labels.items()), ZERO)

    # -- jobs -------------------------------------------------------------------
    def record_jobs(self, records: Sequence[JobRecord], *, plan: AlertPlan | None = None) -> RecordResult:
        """Store the new jobs with their aggregates and period spend, and the alerts
        their spend fires (``plan``), all in one transaction."""
        first: dict[tuple[str, str], int] = {}
        unique: list[JobRecord] = []
        for i, r in enumerate(records):
            key = (r.metrics.tenant_id, r.metrics.job_id)
            if key not in first:
                first[key] = i
                unique.append(r)
        if not unique:
            return RecordResult(inserted=[])
        events: list[AlertEvent] = []
        fired: set[tuple[str, str, date]] = set()
        watch = plan.rules if plan else ()
        if self.dialect == "postgresql" and len(unique) <= SMALL_BATCH:  # committed in one round trip
            notify = (notify_channel(self.schema), self.token) if self.announce_changes else None
            with translate_errors():
                new_keys, spend = record_small(self.engine, unique, now=datetime.now(UTC), watch=watch, notify=notify)
            planned = plan.events_for(spend) if plan is not None and spend else []
            missing = [k for k in first if k not in new_keys]
            if planned or missing:
                with transaction(self.engine, write=True) as conn:
                    events = insert_alerts(conn, planned, plan.now) if plan is not None and planned else []
                    existing = bulk.fetch_jobs(conn, missing) if missing else {}
            else:
                existing = {}
            fired = {(p.event.budget_id, p.event.type, p.event.period_start) for p in planned}
            return RecordResult(
                inserted=self._inserted(records, first, new_keys),
                existing=existing,
                alerts=tuple(events),
                fired=frozenset(fired),
            )
        seq: int | None = None
        with transaction(self.engine, write=True) as conn:
            new_keys = bulk.insert_jobs(conn, unique)
            new = [r for r in unique if (r.metrics.tenant_id, r.metrics.job_id) in new_keys]
            if new:
                bulk.add_daily(conn, new, datetime.now(UTC))
                spend = bulk.add_spend(conn, new, watch=watch)
                if self.announce_changes:
                    seq = mark_spend_changed(conn, schema=self.schema, token=self.token)
                if plan is not None and spend:
                    planned = plan.events_for(spend)
                    events = insert_alerts(conn, planned, plan.now)
                    fired = {(p.event.budget_id, p.event.type, p.event.period_start) for p in planned}
            missing = [k for k in first if k not in new_keys]
            existing = bulk.fetch_jobs(conn, missing) if missing else {}
        self._own_commit(seq)
        return RecordResult(
            inserted=self._inserted(records, first, new_keys),
            existing=existing,
            alerts=tuple(events),
            fired=frozenset(fired),
        )

    @staticmethod
    def _inserted(
        records: Sequence[JobRecord], first: dict[tuple[str, str], int], new_keys: set[tuple[str, str]]
    ) -> list[bool]:
        keys = ((r.metrics.tenant_id, r.metrics.job_id) for r in records)
        return [first[key] == i and key in new_keys for i, key in enumerate(keys)]

    def get_job(self, tenant_id: str, job_id: str) -> JobCost | None:
        with transaction(self.engine) as conn:
            return bulk.fetch_jobs(conn, [(tenant_id, job_id)]).get((tenant_id, job_id))

    def usage_stats(self, *, job_type: str, tenant_id: str | None) -> UsageStats:
        c = job_costs.c
        usage = (c.cpu_time, c.memory_mb_seconds, c.redis_ops, c.network_bytes)
        # PostgreSQL sums NUMERIC exactly; SQLite keeps usage as text, summed as floats
        # (good enough for estimates, which is all these sums are used for).
        sums = (func.sum(col.cast(Float)) for col in usage) if self.dialect == "sqlite" else map(func.sum, usage)
        query = select(func.count(), *sums).where(c.job_type == job_type)
        if tenant_id is not None:
            query = query.where(c.tenant_id == tenant_id)
        with transaction(self.engine) as conn:
            count, *totals = conn.execute(query).one()
        values = [ZERO if v is None else Decimal(repr(v)) if isinstance(v, float) else Decimal(v) for v in totals]
        return UsageStats(count, *values)

    # -- daily aggregates -------------------------------------------------------
    def daily_costs(
        self, *, tenant_id: str | None, queue_name: str | None, start: date, end: date, exact_stats: bool = True
    ) -> list[DailyCost]:
        """Daily rows for ``start <= date <= end``.  With ``exact_stats`` each day's p95
        is first recomputed from its jobs where new jobs arrived since; without it the
        read is cheaper and p95 may lag (totals, counts, min, max and avg are exact)."""
        conds = [daily_costs.c.date >= start, daily_costs.c.date <= end]
        if tenant_id is not None:
            conds.append(daily_costs.c.tenant_id == tenant_id)
        if queue_name is not None:
            conds.append(daily_costs.c.queue_name == queue_name)
        d = daily_costs.c
        sums = [func.sum(d.total_jobs).label("total_jobs")] + [
            func.sum(d[name], type_=Money).label(name) for name in ("total_cost", *COMPONENTS)
        ]
        query = (
            select(
                d.tenant_id,
                d.queue_name,
                d.date,
                *sums,
                func.min(d.min_job_cost, type_=Money).label("min_job_cost"),
                func.max(d.max_job_cost, type_=Money).label("max_job_cost"),
                func.max(d.p95_job_cost, type_=Money).label("p95_job_cost"),
            )
            .where(*conds)
            .group_by(d.tenant_id, d.queue_name, d.date)
            .order_by(d.date, d.tenant_id, d.queue_name)
        )
        with transaction(self.engine, write=exact_stats) as conn:
            if exact_stats:
                self._refresh_stats(conn, and_(*conds))
            return [rows.daily_from_row(r) for r in conn.execute(query).mappings()]

    def _refresh_stats(self, conn: Connection, where: Any) -> None:
        """Recompute avg and p95 of the days with new jobs, on every shard of the day."""
        d, j = daily_costs.c, job_costs.c
        stale = conn.execute(
            select(d.tenant_id, d.queue_name, d.date).where(where, d.stats_stale.is_(True)).distinct()
        ).all()
        for tenant_id, queue_name, day in stale:
            same_day = (d.tenant_id == tenant_id, d.queue_name == queue_name, d.date == day)
            jobs, total = conn.execute(
                select(func.sum(d.total_jobs), func.sum(d.total_cost, type_=Money)).where(*same_day)
            ).one()
            scope = (j.tenant_id == tenant_id, j.queue_name == queue_name, j.day == day)
            kept = conn.execute(select(func.count()).where(*scope)).scalar() or 0
            p95 = ZERO
            if kept:
                p95 = conn.execute(
                    select(j.total_cost).where(*scope).order_by(j.total_cost).offset(p95_rank(kept) - 1).limit(1)
                ).scalar_one()
            conn.execute(
                update(daily_costs)
                .where(*same_day)
                .values(avg_job_cost=average(total or ZERO, jobs or 0), p95_job_cost=p95, stats_stale=False)
            )

    # -- retention --------------------------------------------------------------
    def _pruned_before(self, conn: Connection) -> date | None:
        value = conn.execute(select(store_meta.c.value).where(store_meta.c.key == "raw_pruned_before")).scalar()
        return date.fromisoformat(value) if value else None

    def prune(self, *, raw_before: date, daily_before: date) -> PruneResult:
        with transaction(self.engine, write=True) as conn:
            self._refresh_stats(conn, daily_costs.c.date < raw_before)
            jobs = conn.execute(delete(job_costs).where(job_costs.c.day < raw_before)).rowcount
            days = conn.execute(delete(daily_costs).where(daily_costs.c.date < daily_before)).rowcount
            previous = self._pruned_before(conn)
            if previous is None or raw_before > previous:
                ins = self._insert(store_meta)
                conn.execute(
                    ins.on_conflict_do_update(index_elements=["key"], set_={"value": ins.excluded.value}),
                    {"key": "raw_pruned_before", "value": raw_before.isoformat()},
                )
        return PruneResult(jobs_deleted=jobs, daily_rows_deleted=days)

    # -- forecast snapshots -----------------------------------------------------
    def save_forecast_snapshot(self, snapshot: ForecastSnapshot) -> bool:
        ins = self._insert(forecast_snapshots).on_conflict_do_nothing(index_elements=["budget_id", "period_start"])
        with transaction(self.engine, write=True) as conn:
            done = conn.execute(ins.returning(forecast_snapshots.c.budget_id), rows.snapshot_row(snapshot))
            return done.first() is not None

    def close_forecast_snapshot(
        self, *, budget_id: str, period_start: date, actual_spend: Decimal, closed_at: datetime
    ) -> None:
        f = forecast_snapshots.c
        with transaction(self.engine, write=True) as conn:
            done = conn.execute(
                update(forecast_snapshots)
                .where(f.budget_id == budget_id, f.period_start == period_start)
                .values(actual_spend=actual_spend, closed_at=closed_at)
            )
            if done.rowcount == 0:
                raise NotFoundError("forecast snapshot", f"{budget_id}@{period_start}")

    def list_forecast_snapshots(
        self, *, budget_id: str | None = None, closed: bool | None = None, limit: int = 1000
    ) -> list[ForecastSnapshot]:
        f = forecast_snapshots.c
        query = select(forecast_snapshots).order_by(f.period_start.desc(), f.budget_id.desc()).limit(limit)
        if budget_id is not None:
            query = query.where(f.budget_id == budget_id)
        if closed is not None:
            query = query.where(f.closed_at.is_not(None) if closed else f.closed_at.is_(None))
        with transaction(self.engine) as conn:
            return [rows.snapshot_from_row(r) for r in conn.execute(query).mappings()]

    # -- audit ------------------------------------------------------------------
    def _audit(self, conn: Connection, entries: Sequence[AuditEntry]) -> None:
        if entries:
            conn.execute(
                audit_log.insert(),
                [
                    {
                        "at": e.at,
                        "kind": e.kind,
                        "tenant_id": e.tenant_id,
                        "queue_name": e.queue_name,
                        "budget_id": e.budget_id,
                        "actor": e.actor,
                        "details": e.details,
                    }
                    for e in entries
                ],
            )

    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        with transaction(self.engine, write=True) as conn:
            self._audit(conn, entries)

    def list_audit(
        self, *, tenant_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if tenant_id is not None:
            query = query.where(audit_log.c.tenant_id == tenant_id)
        if kind is not None:
            query = query.where(audit_log.c.kind == kind)
        with transaction(self.engine) as conn:
            return [
                AuditEntry(
                    at=r["at"],
                    kind=r["kind"],
                    tenant_id=r["tenant_id"],
                    queue_name=r["queue_name"],
                    budget_id=r["budget_id"],
                    actor=r["actor"],
                    details=dict(r["details"]),
                )
                for r in conn.execute(query).mappings()
            ]
