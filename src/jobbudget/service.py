"""BudgetService: the use cases, as one facade.  Its public methods are the API every
adapter uses; each delegates to one collaborator of :mod:`jobbudget.core`, built by
the composition root (:mod:`jobbudget.core.compose`).

Constructing a service does no I/O.  :meth:`BudgetService.start` (or entering it as a
context manager, or the first call that needs it) migrates the database, loads the
spend state, connects the shared state and starts the background work;
:meth:`BudgetService.close` ends it."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .config import Config
from .core import compose
from .core.compose import Core
from .core.metering import FUTURE_TOLERANCE, MAX_BATCH, MAX_JOB_COST
from .counters.memory import BudgetState
from .domain.alerts import Alert
from .domain.apikeys import ApiKey
from .domain.budget import Budget, NotificationChannel
from .domain.budget_status import BudgetStatus
from .domain.cost import CostModel, JobCost, JobMetrics
from .domain.enforcement import Admission, EnforcementAction
from .domain.errors import ValidationError
from .domain.periods import BudgetPeriod
from .domain.records import AuditEntry, CostModelVersion, DailyCost, ForecastSnapshot, PruneResult
from .domain.validation import MAX_JOB_ID_LEN, MAX_TENANT_LEN, check_identifier
from .ports import Clock, MetricsSink, NullMetrics, Store
from .service_platform import PlatformFacade

if TYPE_CHECKING:
    from .analytics.accuracy import SnapshotRun
    from .core.live import LiveMarks, LiveVersion
    from .domain.dashboard import BudgetTrends, Dashboard
    from .domain.forecast_backtest import BacktestResult
    from .domain.forecasting import Forecast
    from .domain.reporting import BudgetReport
    from .notify.dispatcher import DispatchResult

__all__ = ["FUTURE_TOLERANCE", "MAX_BATCH", "MAX_JOB_COST", "BudgetService", "BudgetStatus"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class BudgetService(PlatformFacade):
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
        if store is None:
            from .storage import open_store

            store = open_store(self.config.database_url, schema=self.config.database_schema)
        if logging.getLogger("jobbudget").level == logging.NOTSET:  # the application's own setting wins
            logging.getLogger("jobbudget").setLevel(self.config.log_level)
        self._core = compose.build(
            self.config,
            store=store,
            clock=self._now,
            metrics=metrics or NullMetrics(),
            forecast=lambda tenant, queue: self.get_forecast(tenant, queue),
            housekeeping=self.record_forecast_snapshots,
            viewing=lambda: self._viewed_at() is not None,
        )
        self._starting = threading.Lock()
        self._running = False
        self._closed = False

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> BudgetService:
        """Migrate, load and connect, and start the background work (once; the first
        call that needs it does it too)."""
        with self._starting:
            if self._closed:
                raise RuntimeError("this BudgetService is closed")
            if not self._running:
                compose.start(self._core)
                self._running = True
        return self

    @property
    def core(self) -> Core:
        """The collaborators, started (for adapters that need one of them, and tests)."""
        if not self._running:
            self.start()
        return self._core

    def __enter__(self) -> BudgetService:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def close(self) -> None:
        """Write buffered audit entries and release the database."""
        with self._starting:
            if self._closed:
                return
            self._closed = True
            if self._running:
                compose.stop(self._core)
            else:
                self._core.store.close()

    def flush(self) -> None:
        """Write buffered audit entries (bypasses) now, and their ``bypass`` alerts."""
        compose.flush(self.core)

    def _now(self) -> datetime:
        now = self._viewed_at() or self._clock()
        if now.tzinfo is None:
            raise ValidationError("clock", now, "must return an aware datetime")
        return now.astimezone(UTC)

    def now(self) -> datetime:
        """The current time from the service's clock (aware, UTC)."""
        return self._now()

    @contextlib.contextmanager
    def as_of(self, at: datetime) -> Iterator[None]:
        """Reads made in this thread inside the block see ``at`` as now, as they would
        on a service whose clock said ``at`` (``jobbudget tui --at``: what is shown).
        Nothing else moves: other threads, enforcement and the background work keep the
        real clock.  For reads only: a write made inside the block would be stamped
        ``at``."""
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValidationError("at", at, "must be an aware datetime")
        outer = self._viewed_at()
        self._viewed.at = at.astimezone(UTC)
        try:
            yield
        finally:
            self._viewed.at = outer

    def _viewed_at(self) -> datetime | None:
        """The moment :meth:`as_of` set for this thread's reads, if any."""
        at: datetime | None = getattr(self._viewed, "at", None)
        return at

    @property
    def store(self) -> Store:
        """The storage the service uses (for the analytics use cases)."""
        return self.core.store

    def ping(self) -> None:
        self.core.store.ping()

    @property
    def shares_state(self) -> bool:
        """Whether checks read spend shared by every process (Redis or the database)
        rather than this process's own copy."""
        return self._core.hot.shared

    def resync(self) -> None:
        """Rebuild the in-memory spend state from the ledger now (the periodic worker
        does it every ``flush_interval``): picks up jobs that other processes wrote
        to the same database."""
        self.core.sync.reload()

    def enable_debug_logging(self, enabled: bool = True) -> None:
        logging.getLogger("jobbudget").setLevel(logging.DEBUG if enabled else self.config.log_level)

    def active_budget_states(self) -> Iterable[BudgetState]:
        return self.core.spend.all_states()

    # -- metering -----------------------------------------------------------------
    def process_job_cost(self, metrics: JobMetrics, *, reservation_id: str | None = None) -> JobCost:
        """Price and store one job; a job id seen before is counted once.  With the
        ``reservation_id`` of its admission, the reservation is settled: the real
        cost replaces the estimate (a redelivered job settles nothing twice).

        With ``metering_journal`` set, the job is durable once in this process's
        journal and reaches the ledger within milliseconds, in a batch; admissions
        count it at once.  A redelivery is then recognised by the ledger, after this
        returns: its ``duplicate`` is False here, and its spend is taken back."""
        return self.core.metering.process([metrics], reservation_ids=[reservation_id], accept_late=True, journal=True)[
            0
        ]

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
        return self.core.metering.process(batch, reservation_ids=reservation_ids, accept_late=accept_late)

    # -- admission ----------------------------------------------------------------
    def check_budget_compliance(
        self, tenant_id: str, queue_name: str = "", priority: int = 5, *, labels: Mapping[str, str] | None = None
    ) -> EnforcementAction:
        """Decide admission of a job: the most restrictive action of every active
        budget covering the tenant and queue (its own, its teams' and organisation's,
        and those selecting ``labels``; no budget: allow).  Open reservations count as
        spent."""
        return self.core.admissions.check(tenant_id, queue_name, priority, labels=labels)

    def admit(
        self,
        tenant_id: str,
        queue_name: str = "",
        *,
        priority: int = 5,
        estimated_cost: Any = None,
        ttl_seconds: float = 3600.0,
        labels: Mapping[str, str] | None = None,
    ) -> Admission:
        """Admit a job and reserve its estimated cost against every budget covering it,
        or refuse it (``action.type == "block"``, no reservation) when spend plus open
        reservations plus the estimate would pass a blocking budget's block threshold.
        ``estimated_cost`` defaults to this queue's mean job cost, else
        :meth:`estimate_job_cost` of a 60-CPU-second job.  Settle with
        ``process_job_cost(metrics, reservation_id=...)`` or :meth:`release`; the
        reservation expires by itself after ``ttl_seconds``."""
        return self.core.admissions.admit(
            tenant_id, queue_name, priority=priority, estimated_cost=estimated_cost, ttl_seconds=ttl_seconds,
            labels=labels,
        )  # fmt: skip

    def release(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        """Cancel a reservation (the job will not run); False if it was not open, or
        (with ``tenant_id``) belongs to another tenant."""
        return self.core.admissions.release(reservation_id, tenant_id=tenant_id)

    def open_reservations(self) -> int:
        """How many reservations this process holds (all processes' with Redis)."""
        return self.core.admissions.open_reservations()

    # -- budgets --------------------------------------------------------------------
    def validate_budget(self, budget: Budget, *, stored: Budget | None = None) -> None:
        """Raise :class:`ValidationError` naming the first field that is wrong, including a
        new channel whose target is an address the outbound policy refuses (channels the
        ``stored`` budget already had are kept as they are: they are refused when sent)."""
        self._core.budgets.validate(budget, stored=stored)

    def create_budget(self, budget: Budget, *, actor: str = "system") -> Budget:
        """Validate and store a budget; returns it with its id and resolved period."""
        return self.core.budgets.create(budget, actor=actor)

    def update_budget(self, budget: Budget, *, actor: str = "system") -> Budget:
        """Replace a stored budget (same id and tenant); the current period's spend is
        recounted from the stored jobs for its (possibly new) scope and period."""
        return self.core.budgets.update(budget, actor=actor)

    def deactivate_budget(self, budget_id: str, *, actor: str = "system") -> Budget:
        budget = self.get_budget(budget_id)
        return self.update_budget(replace(budget, active=False), actor=actor)

    def get_budget(self, budget_id: str) -> Budget:
        return self.core.budgets.get(budget_id)

    def list_budgets(self, tenant_id: str | None = None, *, include_inactive: bool = False) -> list[Budget]:
        return self.core.store.list_budgets(tenant_id=tenant_id, include_inactive=include_inactive)

    def get_budget_status(self, budget_id: str) -> BudgetStatus:
        return self.core.budgets.status(budget_id)

    # -- alerts ---------------------------------------------------------------------
    def list_alerts(
        self, tenant_id: str | None = None, *, active_only: bool = False, limit: int = 500, details: bool = True
    ) -> list[Alert]:
        """Alerts newest first, each with its deliveries per channel (targets
        redacted); ``active_only``: not acknowledged and of a period not yet over.
        ``details=False`` is what a tenant is shown: only the deliveries to its budgets'
        own channels (not to the configuration's ``notification_channels``), and failures
        without their reasons, which name hosts, ports and what the receiver answered."""
        return self.core.desk.list_alerts(tenant_id, active_only=active_only, limit=limit, details=details)

    def acknowledge_alert(self, alert_id: str, by: str) -> None:
        self.core.desk.acknowledge(alert_id, by)

    def resend_delivery(self, delivery_id: int) -> None:
        """Send a delivery again now: failed (dead-lettered), sent, or still waiting
        (a retry, a rate limit).  ConflictError while it is being sent."""
        self.core.desk.resend(delivery_id)

    def dispatch_notifications(self, timeout: float = 30.0) -> DispatchResult:
        """Deliver what is due now, synchronously, for at most ``timeout`` seconds
        (the background dispatcher does the same continuously)."""
        return self.core.desk.dispatch(timeout)

    def send_test_notification(self, channel: NotificationChannel) -> None:
        """Send a clearly labelled test message through ``channel`` now (raises
        :class:`jobbudget.notify.base.DeliveryError` when it cannot be delivered)."""
        self._core.desk.send_test(channel)

    def send_budget_test_notification(self, budget_id: str, index: int) -> None:
        """Send a test message through the budget's channel number ``index`` (0-based),
        with the stored secrets (which callers of the API never see)."""
        self.core.desk.send_budget_test(budget_id, index)

    # -- API keys -------------------------------------------------------------------
    def remembered_key(self, token: str) -> ApiKey | None:
        """The key ``token`` is, if this process knows it without a lookup (None: look
        it up with :meth:`authenticate`); AuthenticationError for a malformed token or
        one known to be unknown.  Never touches the database."""
        return self._core.keys.remembered_key(token)

    def create_api_key(
        self, *, role: str, tenant_id: str | None = None, name: str = "", actor: str = "system"
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext.  The plaintext is returned this once and never
        stored (only its SHA-256 digest is); the audit entry carries no key material."""
        return self.core.keys.create_api_key(role=role, tenant_id=tenant_id, name=name, actor=actor)

    def list_api_keys(self) -> list[ApiKey]:
        """Every key (revoked ones too), oldest first; never a secret or hash."""
        return self.core.keys.list_api_keys()

    def revoke_api_key(self, key_id: str, *, actor: str = "system") -> None:
        """Revoke a key (NotFoundError if there is none); revoking twice keeps the
        first time.  This process refuses the key from now on."""
        self.core.keys.revoke_api_key(key_id, actor=actor)

    def authenticate(self, token: str | None, *, max_age: float = 5.0) -> ApiKey:
        """The key ``token`` is; AuthenticationError if it is missing, malformed,
        unknown or revoked (the message never contains the token).  ``max_age``: how
        old (seconds) a remembered lookup may be for this call."""
        return self.core.keys.authenticate(token, max_age=max_age)

    def authorize(self, key: ApiKey, *, action: str, tenant_id: str | None) -> None:
        """PermissionDeniedError unless ``key`` may do ``action`` on ``tenant_id``'s
        data (None: every tenant's)."""
        self._core.keys.authorize(key, action=action, tenant_id=tenant_id)

    # -- the live view --------------------------------------------------------------
    def live_version(self) -> LiveVersion:
        """O(1): changes whenever a budget, a period or a spend may have changed."""
        return self.core.live.version()

    def live_marks(self, budget_ids: Sequence[str]) -> LiveMarks:
        """What each budget's status is computed from, now (see :mod:`jobbudget.core.live`)."""
        return self.core.live.marks(budget_ids)

    # -- estimation and cost model ------------------------------------------------
    def estimate_job_cost(
        self, job_type: str, cpu_time: Any, payload_kb: Any, *, tenant_id: str | None = None
    ) -> Decimal:
        """Estimate a job's cost before it runs (see :mod:`jobbudget.domain.estimation`)."""
        return self.core.pricing.estimate(job_type, cpu_time, payload_kb, tenant_id=tenant_id)

    def price_job(self, metrics: JobMetrics) -> JobCost:
        """What ``metrics`` would cost under the model in force; nothing is stored."""
        return self.core.pricing.engine.calculate_job_cost(metrics)

    def get_cost_model(self) -> CostModel:
        return self.core.pricing.engine.model

    def get_cost_model_version(self) -> int:
        return self.core.pricing.engine.version

    def list_cost_models(self) -> list[CostModelVersion]:
        return self.core.store.list_cost_models()

    def update_cost_model(self, model: CostModel, *, actor: str = "system") -> CostModelVersion:
        """Price new jobs with ``model`` from now on.  Stored jobs keep the price (and
        the model version) they were processed with."""
        return self.core.pricing.update(model, actor=actor)

    # -- analytics (the models live in jobbudget.domain, the use cases in jobbudget.analytics)
    def get_forecast(self, tenant_id: str, queue_name: str = "") -> Forecast:
        """Forecast the current period of the active budget for exactly this scope
        (tenant-wide when ``queue_name`` is empty)."""
        from .analytics.forecasts import get_forecast

        return get_forecast(self, tenant_id=tenant_id, queue_name=queue_name)

    def forecast_accuracy(self, tenant_id: str, queue_name: str = "") -> BacktestResult:
        """Backtest the forecast on this scope's own daily spend of the last year."""
        from .analytics.forecasts import forecast_accuracy

        return forecast_accuracy(self, tenant_id=tenant_id, queue_name=queue_name)

    def record_forecast_snapshots(self) -> SnapshotRun:
        """Keep each budget period's mid-period forecast and, once the period closes,
        its real spend (runs in the background every ``flush_interval``)."""
        from .analytics.accuracy import record_forecast_snapshots

        return record_forecast_snapshots(self)

    def list_forecast_snapshots(
        self, *, budget_id: str | None = None, closed: bool | None = None, limit: int = 1000
    ) -> list[ForecastSnapshot]:
        """Recorded mid-period forecasts, newest period first (``error`` once closed)."""
        return self.store.list_forecast_snapshots(budget_id=budget_id, closed=closed, limit=limit)

    def generate_report(self, tenant_id: str, period: BudgetPeriod) -> BudgetReport:
        """Spend, drivers, breakdowns, daily series, forecast and recommendations for a
        tenant over ``period``."""
        from .analytics.reports import generate_report

        return generate_report(self, tenant_id=tenant_id, period=period)

    def dashboard(self, tenant_id: str | None = None, *, top: int = 10) -> Dashboard:
        """Every budget with its status now (inactive ones too) and the ``top`` cost
        drivers of the current UTC month; one tenant's when ``tenant_id`` is given."""
        from .analytics.views import dashboard

        return dashboard(self, tenant_id=tenant_id, top=top)

    def budget_trends(self, budget_id: str, *, days: int = 30) -> BudgetTrends:
        """The budget's daily spend over the last ``days`` days with its daily pace,
        the period's forecast and the cost by component."""
        from .analytics.views import budget_trends

        return budget_trends(self, budget_id=budget_id, days=days)

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
        :meth:`jobbudget.ports.Ledger.daily_costs` for ``exact_stats``."""
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
        from datetime import timedelta

        today = self.now().date()
        return self.store.prune(
            raw_before=today - timedelta(days=self.config.raw_retention_days),
            daily_before=today - timedelta(days=self.config.retention_days),
        )
