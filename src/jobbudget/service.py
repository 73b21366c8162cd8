"""BudgetService: the use cases.  Its public methods are the API every adapter uses."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .background import AuditBuffer, PeriodicWorker
from .config import Config
from .counters.memory import BudgetState, SpendIndex
from .counters.reservations import LocalReservations
from .counters.usage import UsageCache
from .domain.cost import CostCalculationEngine, CostModel, JobCost, JobMetrics
from .domain.errors import StorageUnavailableError, ValidationError
from .domain.estimation import choose_profile, estimate_cost
from .domain.money import ZERO
from .domain.periods import window_at
from .domain.records import CostModelVersion, JobRecord, SpendKey
from .domain.validation import MAX_ID_LEN, MAX_TENANT_LEN, check_identifier
from .ports import ChangeFeed, Clock, MetricsSink, NullMetrics, Store
from .service_admission import AdmissionMixin
from .service_alerts import AlertsMixin
from .service_budgets import BudgetsMixin, BudgetStatus
from .service_keys import KeysMixin
from .service_live import LiveMixin
from .service_queries import QueriesMixin
from .service_shared import SharedMixin

if TYPE_CHECKING:
    from .ports import SharedState

__all__ = ["BudgetService", "BudgetStatus"]

log = logging.getLogger("jobbudget")
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_BATCH = 100_000
#: No single job may cost more than this (a broken reporter, not a real job).
MAX_JOB_COST = Decimal(1_000_000)
_STATS_TTL = timedelta(seconds=60)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _duration(span: timedelta) -> str:
    """``2 days``, ``36 hours``, ``90 minutes``: a window as people say it."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


class BudgetService(AdmissionMixin, BudgetsMixin, SharedMixin, QueriesMixin, AlertsMixin, KeysMixin, LiveMixin):
    """Prices jobs, keeps spend per tenant, queue, day and budget period, and decides
    admission.  Use as a context manager (or call :meth:`close`) so buffered audit
    entries are written."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.config = config or Config()
        self._clock = clock or utc_now
        self._viewed = threading.local()  # as_of(): the moment one thread's reads see
        self._metrics: MetricsSink = metrics or NullMetrics()
        self._mean_cost: dict[tuple[str, str], tuple[Decimal, int]] = {}  # for cost-savings estimates
        if store is None:
            from .storage import open_store

            store = open_store(self.config.database_url, schema=self.config.database_schema)
        self._store = store
        # Two locks, always taken in this order: ``_write`` serialises everything that
        # writes the ledger or reshapes the spend state (ingest, budget changes, period
        # rolls, resyncs) and is held across database I/O; ``_state`` guards the
        # in-memory numbers for microseconds, and is all an admission check needs.
        self._write = threading.RLock()
        self._state = threading.Lock()
        self._index = SpendIndex()
        self._reservations = LocalReservations()
        self._shared: SharedState | None = None
        # Without a shared state each process keeps its own spend; the store's change
        # feed says when another writer committed, and the budgets a decision reads
        # are then re-read from the ledger (generation: how many changes were seen).
        self._changes: ChangeFeed | None = None
        self._generation = 0
        self._usage = UsageCache(store)
        self._fired: set[tuple[str, str, date]] = set()  # alerts already written, per period
        self._alerts_ready = threading.Event()  # wakes the dispatcher
        self._audit = AuditBuffer(store)
        self._commit_unknown = False  # a batch failed at a moment its commit may have gone through
        if logging.getLogger("jobbudget").level == logging.NOTSET:  # the application's own setting wins
            logging.getLogger("jobbudget").setLevel(self.config.log_level)
        try:
            self._store.migrate()
            latest = self._store.latest_cost_model()
            if latest is None:
                latest = self._store.add_cost_model(
                    self.config.build_cost_model(), created_at=self._now(), created_by="config"
                )
            self._engine = CostCalculationEngine(latest.model, version=latest.version)
            self._reload()
            self._watch_budgets()  # the fingerprint later changes are compared with
            self._open_shared()
            if self._shared is None:
                self._changes = self._store.changes()
                self._look_for_changes()  # the first look: what the ledger says now is known
        except Exception:
            self._store.close()
            raise
        every = self.config.flush_interval.total_seconds()
        self._start_dispatcher()
        self._worker = PeriodicWorker(
            [
                (1.0, self.flush),
                (every, self._reload),
                (every, self._housekeeping),
                (self.config.budget_watch_interval, self._watch_budgets),
                (1.0, self._shared_tick),
                (1.0, self._recount_unknown_commit),
                (every, self._reconcile),
            ]
        )
        self._worker.start()

    # -- life cycle ---------------------------------------------------------------
    def __enter__(self) -> BudgetService:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def close(self) -> None:
        """Write buffered audit entries and release the database."""
        if self._worker.stopped:
            return
        self._worker.stop()
        try:
            self.flush()
            self._stop_dispatcher()
        finally:
            self._store.close()
            redis = self._redis()
            if redis is not None:
                redis.close()

    def flush(self) -> None:
        """Write buffered audit entries (bypasses) now, and their ``bypass`` alerts."""
        self._bypass_alerts(self._audit.flush())

    def _now(self) -> datetime:
        now = self._viewed_at() or self._clock()
        if now.tzinfo is None:
            raise ValidationError("clock", now, "must return an aware datetime")
        return now.astimezone(UTC)

    def _reload(self) -> None:
        """Rebuild the in-memory state from the ledger.  Holds the write lock throughout
        so that no batch can commit between reading the ledger and swapping the state."""
        with self._write:
            now = self._now()
            generation = self._generation  # read before the ledger: a later change stays a change
            budgets = self._store.list_budgets()
            windows = {b.id: window_at(b.period, now) for b in budgets}
            keys = [SpendKey(str(b.id), w.start_date) for b in budgets if (w := windows[b.id]) is not None]
            spend = self._store.load_spend(keys)
            index = SpendIndex()
            for b in budgets:
                w = windows[b.id]
                state = index.put(
                    b, window=w, spend=spend.get(SpendKey(str(b.id), w.start_date), ZERO) if w else ZERO, now=now
                )
                state.synced = generation
            self._load_fired(windows.values())
            with self._state:
                self._index = index
            log.debug("rebuilt spend state: %d active budgets", len(index))

    def _look_for_changes(self) -> None:
        """Ask the store whether another writer committed since the last look."""
        if self._changes is not None and self._changes.changed():
            self._generation += 1

    def _stale(self, states: Sequence[BudgetState]) -> bool:
        return self._changes is not None and any(s.synced != self._generation for s in states)

    def _resync(self, states: Sequence[BudgetState]) -> None:
        """(Under the write and state locks.)  Re-read from the ledger the spend of the
        states another writer may have changed since they were last read.  If the
        database cannot be read, the spend this process knows stands."""
        generation = self._generation
        stale = [s for s in states if s.synced != generation]
        keys = [s.key for s in stale if s.key is not None]
        try:
            spend = self._store.load_spend(keys) if keys else {}
        except StorageUnavailableError as exc:
            log.debug("other processes' spend not read, deciding on this process's: %s", exc)
            return
        for state in stale:
            if state.key is not None:
                state.spend = spend.get(state.key, ZERO)
            state.synced = generation

    @property
    def shares_state(self) -> bool:
        """Whether checks read spend shared by every process (Redis or the database)
        rather than this process's own copy."""
        return self._shared is not None

    def resync(self) -> None:
        """Rebuild the in-memory spend state from the ledger now (the periodic worker
        does it every ``flush_interval``): picks up jobs that other processes wrote
        to the same database."""
        self._reload()

    def _housekeeping(self) -> None:
        """Periodic work off the request path: mid-period forecast snapshots, and the
        ``reset`` and ``forecast_overrun`` alerts."""
        self.record_forecast_snapshots()
        self._safe_lifecycle()

    def enable_debug_logging(self, enabled: bool = True) -> None:
        logging.getLogger("jobbudget").setLevel(logging.DEBUG if enabled else self.config.log_level)

    # -- metering -----------------------------------------------------------------
    def process_job_cost(self, metrics: JobMetrics, *, reservation_id: str | None = None) -> JobCost:
        """Price and store one job; a job id seen before is counted once.  With the
        ``reservation_id`` of its admission, the reservation is settled: the real
        cost replaces the estimate (a redelivered job settles nothing twice)."""
        return self.process_job_costs([metrics], reservation_ids=[reservation_id])[0]

    def process_job_costs(
        self,
        batch: Sequence[JobMetrics],
        *,
        reservation_ids: Sequence[str | None] | None = None,
        accept_late: bool = True,
    ) -> list[JobCost]:
        """Price and store a batch in one transaction.  Any invalid item rejects the
        whole batch before anything is stored.  ``reservation_ids`` (one per job, or
        None) settles the jobs' admissions once the batch is stored.  With
        ``accept_late=False`` (the API for a tenant's key) a job that finished more than
        ``late_job_window`` ago is refused: it would count toward a past period and
        escape the current one's budget; historic imports leave it True."""
        if len(batch) > MAX_BATCH:
            raise ValidationError("batch", len(batch), f"must hold at most {MAX_BATCH} jobs")
        if reservation_ids is not None:
            if len(reservation_ids) != len(batch):
                raise ValidationError("reservation_ids", len(reservation_ids), f"must hold one per job ({len(batch)})")
            for i, rid in enumerate(reservation_ids):
                if rid is not None:
                    check_identifier(f"reservation_ids[{i}]", rid, max_len=MAX_ID_LEN)
        now = self._now()
        limit = now + FUTURE_TOLERANCE
        oldest = None if accept_late else now - self.config.late_job_window
        for i, m in enumerate(batch):
            if not isinstance(m, JobMetrics):
                raise ValidationError(f"batch[{i}]", type(m).__name__, "must be a JobMetrics")
            if m.timestamp is not None and m.timestamp > limit:
                raise ValidationError(f"batch[{i}].timestamp", m.timestamp.isoformat(), "is in the future")
            if oldest is not None and m.timestamp is not None and m.timestamp < oldest:
                raise ValidationError(
                    f"batch[{i}].timestamp",
                    m.timestamp.isoformat(),
                    f"is more than {_duration(self.config.late_job_window)} in the past (late_job_window): historic "
                    "jobs are imported with an admin key or `jobbudget import`",
                )
        engine = self._engine
        self._recount_unknown_commit()
        with self._write:  # no roll or resync can change the index meanwhile
            index = self._index
            records: list[JobRecord] = []
            ends: dict[tuple[str, date], date] = {}
            priced_from = time.perf_counter()
            for m in batch:
                ts = now if m.timestamp is None else m.timestamp.astimezone(UTC)
                cost = engine.calculate_job_cost(m, timestamp=ts)
                if cost.total_cost > MAX_JOB_COST:
                    raise ValidationError(
                        f"batch[{len(records)}]",
                        m.job_id,
                        f"costs {cost.total_cost}, over {MAX_JOB_COST}: check its metrics",
                    )
                keys = index.spend_keys(m.tenant_id, m.queue_name, ts, ends)
                records.append(JobRecord(metrics=m, cost=cost, timestamp=ts, day=ts.date(), spend_keys=keys))
            self._metrics.priced(jobs=len(records), seconds=time.perf_counter() - priced_from)
            # the alerts this spend fires are written in the same transaction
            try:
                result = self._store.record_jobs(records, plan=self._alert_plan(records, ends, now))
            except StorageUnavailableError:
                self._commit_unknown = True  # the connection may have dropped after the commit
                raise
            with self._state:  # only jobs really stored count, once committed
                for record, new in zip(records, result.inserted, strict=True):
                    if new:
                        index.add(record.spend_keys, record.cost.total_cost)
            self._fired.update(result.fired)
            self._count_stored(records, result.inserted)
            self._publish(records, result.inserted)
        self._announce(result.alerts)
        for metrics, rid in zip(batch, reservation_ids or (), strict=False):
            # after the spend counts (never a moment with neither), and only the job's own
            # tenant's: another tenant's reservation id settles nothing
            self._settle(rid, tenant_id=metrics.tenant_id)
        first_cost: dict[tuple[str, str], JobCost] = {}
        out: list[JobCost] = []
        for record, new in zip(records, result.inserted, strict=True):
            key = (record.metrics.tenant_id, record.metrics.job_id)
            if new:
                first_cost[key] = record.cost
                out.append(record.cost)
            elif key in first_cost:
                out.append(replace(first_cost[key], duplicate=True))
            else:
                out.append(result.existing[key])
        return out

    def _recount_unknown_commit(self) -> None:
        """After a batch failed with the database unreachable, the ledger may hold it
        although it was never counted here (its retry is then a duplicate, counted by
        nobody): rebuild the spend from the ledger, and Redis from it, once it answers."""
        if not self._commit_unknown:
            return
        with self._write:
            try:
                self._reload()
            except StorageUnavailableError as exc:
                log.debug("spend not rebuilt yet, the database is still unavailable: %s", exc)
                return
            self._commit_unknown = False
            self._shared_dirty = True  # the next shared tick rebuilds Redis from the ledger

    def _count_stored(self, records: Sequence[JobRecord], inserted: Sequence[bool]) -> None:
        """After a commit (under the write lock): usage history for estimates, spend
        per tenant for the metrics, and each queue's mean job cost."""
        per_tenant: dict[str, Decimal] = {}
        for record, new in zip(records, inserted, strict=True):
            if new:
                m, cost = record.metrics, record.cost.total_cost
                self._usage.observe(m)
                per_tenant[m.tenant_id] = per_tenant.get(m.tenant_id, ZERO) + cost
                total, count = self._mean_cost.get((m.tenant_id, m.queue_name), (ZERO, 0))
                self._mean_cost[(m.tenant_id, m.queue_name)] = (total + cost, count + 1)
        for tenant_id, amount in per_tenant.items():
            self._metrics.stored(tenant_id=tenant_id, amount=amount)

    # -- enforcement: check_budget_compliance, admit and release (service_admission.py)
    def _load_spend(self, key: SpendKey) -> Decimal:
        return self._store.load_spend([key]).get(key, ZERO)

    # -- estimation and cost model ------------------------------------------------
    def estimate_job_cost(
        self, job_type: str, cpu_time: Any, payload_kb: Any, *, tenant_id: str | None = None
    ) -> Decimal:
        """Estimate a job's cost before it runs (see :mod:`jobbudget.domain.estimation`)."""
        check_identifier("job_type", job_type, max_len=100, allow_empty=True)
        if tenant_id is not None:
            check_identifier("tenant_id", tenant_id, max_len=MAX_TENANT_LEN)
        now = self._now()
        tenant = self._usage.get(job_type, tenant_id, now) if tenant_id is not None else None
        overall = self._usage.get(job_type, None, now)
        profile = choose_profile(job_type, tenant=tenant, overall=overall)
        return estimate_cost(self._engine, profile=profile, cpu_time=cpu_time, payload_kb=payload_kb)

    def get_cost_model(self) -> CostModel:
        return self._engine.model

    def get_cost_model_version(self) -> int:
        return self._engine.version

    def list_cost_models(self) -> list[CostModelVersion]:
        return self._store.list_cost_models()

    def update_cost_model(self, model: CostModel, *, actor: str = "system") -> CostModelVersion:
        """Price new jobs with ``model`` from now on.  Stored jobs keep the price (and
        the model version) they were processed with."""
        if not isinstance(model, CostModel):
            raise ValidationError("model", type(model).__name__, "must be a CostModel")
        version = self._store.add_cost_model(model, created_at=self._now(), created_by=actor)
        self._engine = CostCalculationEngine(model, version=version.version)
        return version

    def now(self) -> datetime:
        """The current time from the service's clock (aware, UTC)."""
        return self._now()

    @property
    def store(self) -> Store:
        """The storage the service uses (for the analytics use cases)."""
        return self._store

    def ping(self) -> None:
        self._store.ping()

    def active_budget_states(self) -> Iterable[BudgetState]:
        self._look_for_changes()
        with self._state:
            states = self._index.states()
            if not self._stale(states):
                return [replace(state) for state in states]
        with self._write, self._state:
            states = self._index.states()
            self._resync(states)
            return [replace(state) for state in states]
