"""The composition root: every collaborator of the service built from a ``Config``
(storage, hot state, notifiers, clock), each given only the ports it uses.
Building does no I/O; :func:`start` connects, migrates, loads and starts the
background work, :func:`stop` ends it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..background import AuditBuffer, PeriodicWorker
from ..config import Config
from ..domain.adjustments import RefundPolicy
from ..domain.budget import NotificationChannel
from ..ports import MetricsSink, SharedState, Store
from .admission import Admissions
from .alert_desk import AlertDesk
from .alert_planning import AlertPlanner, ForecastOf
from .budget_admin import BudgetAdmin
from .hot_state import HotState, LocalHotState
from .journal_drain import JournalDrain
from .keys import ApiKeys
from .live import LiveView
from .metering import Metering
from .platform_admin import PlatformAdmin
from .pricing import Pricing
from .shared_hot_state import SharedHotState
from .spend_state import SpendState
from .sync import SharedSync

if TYPE_CHECKING:
    from ..notify.dispatcher import Dispatcher

__all__ = ["Core", "build", "flush", "start", "stop"]


@dataclass(frozen=True)
class Core:
    config: Config
    store: Store
    clock: Callable[[], datetime]
    spend: SpendState
    hot: HotState
    pricing: Pricing
    planner: AlertPlanner
    desk: AlertDesk
    audit: AuditBuffer
    metering: Metering
    admissions: Admissions
    budgets: BudgetAdmin
    keys: ApiKeys
    live: LiveView
    sync: SharedSync
    worker: PeriodicWorker
    platform: PlatformAdmin
    drain: JournalDrain | None = None


def _hot_state(
    config: Config, store: Store, spend: SpendState, metrics: MetricsSink, clock: Callable[[], datetime]
) -> HotState:
    mode = config.shared_state
    if mode == "auto":
        mode = "redis" if config.redis_url else "memory"
    if mode == "memory":
        return LocalHotState(spend.lock)
    connect: Callable[[], SharedState]
    if mode == "database":
        from ..counters.database import DatabaseSharedState

        def connect() -> SharedState:
            return DatabaseSharedState(store)

        failure_mode = None
    else:
        from ..domain.errors import ValidationError

        if not config.redis_url:
            raise ValidationError("redis_url", None, "is required with shared_state: redis")
        url = config.redis_url

        def connect() -> SharedState:
            from ..counters.shared import RedisSharedState
            from ..counters.shared import connect as redis_client

            return RedisSharedState(redis_client(url, timeout=config.redis_timeout), prefix=config.redis_prefix)

        failure_mode = config.redis_failure_mode
    return SharedHotState(connect, spend=spend, ledger=store, metrics=metrics, clock=clock, failure_mode=failure_mode)


def build(
    config: Config,
    *,
    store: Store,
    clock: Callable[[], datetime],
    metrics: MetricsSink,
    forecast: ForecastOf | None = None,
    housekeeping: Callable[[], object] | None = None,
    viewing: Callable[[], bool] = lambda: False,
) -> Core:
    """Every collaborator, wired; nothing is connected or started.  ``forecast`` gives
    the planner the forecasts of ``forecast_overrun`` alerts; ``housekeeping`` runs
    every ``flush_interval`` (the analytics' forecast snapshots), before the
    ``reset`` and ``forecast_overrun`` alerts; ``viewing`` says whether this thread
    reads as of another moment (a budget's status then comes from the ledger)."""
    spend = SpendState(store, platform=store)
    hot = _hot_state(config, store, spend, metrics, clock)
    ready = threading.Event()  # new alerts: wakes the dispatcher
    pricing = Pricing(store, config=config, clock=clock)
    planner = AlertPlanner(store, spend=spend, config=config, clock=clock, ready=ready)
    planner.forecast = forecast
    spend.on_reload = planner.load_fired

    def make_dispatcher() -> Dispatcher:
        from ..notify.dispatcher import Dispatcher

        return Dispatcher(store=store, config=config, clock=clock)

    def send_test(channel: NotificationChannel) -> None:
        from ..notify.base import send_test as send

        send(channel, config, now=clock())

    desk = AlertDesk(
        store, config=config, clock=clock, ready=ready, make_dispatcher=make_dispatcher, send_test=send_test
    )
    audit = AuditBuffer(store)
    admissions = Admissions(spend=spend, hot=hot, pricing=pricing, audit=audit, metrics=metrics, clock=clock)
    metering = Metering(
        store,
        spend=spend,
        hot=hot,
        pricing=pricing,
        planner=planner,
        metrics=metrics,
        config=config,
        clock=clock,
    )
    drain = _journal_drain(config, store, spend, hot, pricing, planner, metrics, clock)
    metering.drain = drain
    budgets = BudgetAdmin(
        store, spend=spend, hot=hot, planner=planner, config=config, clock=clock, viewing=viewing, platform=store
    )
    platform = PlatformAdmin(
        store,
        store,
        spend=spend,
        hot=hot,
        budgets=budgets,
        refunds=RefundPolicy(tuple(s.upper() for s in config.refund_exit_states)),
        clock=clock,
    )
    metering.after_commit = platform.refund_failed
    if drain is not None:
        drain.after_commit = platform.refund_failed
    keys = ApiKeys(store, audit=store, clock=clock, tree=lambda: spend.index.tree)
    live = LiveView(store, spend=spend, hot=hot, clock=clock)
    sync = SharedSync(store, spend=spend, hot=hot, clock=clock)

    def housework() -> None:
        if housekeeping is not None:
            housekeeping()
        planner.safe_lifecycle()

    every = config.flush_interval.total_seconds()
    worker = PeriodicWorker(
        [
            (1.0, lambda: planner.bypasses(audit.flush())),  # what flush(core) does
            (every, sync.reload),
            (every, housework),
            (config.budget_watch_interval, sync.watch_budgets),
            (1.0, sync.tick),
            *([(SWEEP_SECONDS, planner.safe_sweep)] if store.alerts_after_commit else []),
            (1.0, metering.recount_unknown_commit),
            (every, sync.reconcile),
        ]
    )
    return Core(
        config, store, clock, spend, hot, pricing, planner, desk, audit, metering, admissions, budgets, keys, live,
        sync, worker, platform, drain,
    )  # fmt: skip


def _journal_drain(
    config: Config,
    store: Store,
    spend: SpendState,
    hot: HotState,
    pricing: Pricing,
    planner: AlertPlanner,
    metrics: MetricsSink,
    clock: Callable[[], datetime],
) -> JournalDrain | None:
    if config.metering_journal is None:
        return None
    if not isinstance(hot, SharedHotState) or hot.failure_mode is None:
        from ..domain.errors import ValidationError

        raise ValidationError(
            "metering_journal",
            str(config.metering_journal),
            "needs Redis as the shared state (redis_url): admissions read journaled spend from it "
            "while the ledger catches up",
        )
    from ..storage.journal import FileJournal

    return JournalDrain(
        FileJournal(config.metering_journal),
        store,
        spend=spend,
        hot=hot,
        pricing=pricing,
        planner=planner,
        metrics=metrics,
        clock=clock,
    )


#: How often threshold alerts are checked against the ledger where a store writes a
#: batch's alerts after its commit (see AlertPlanner.sweep).
SWEEP_SECONDS = 2.0


def flush(core: Core) -> None:
    """Write buffered audit entries (bypasses) now, and their ``bypass`` alerts."""
    core.planner.bypasses(core.audit.flush())


def start(core: Core) -> None:
    """Migrate the database, load the cost model and the spend state, connect the hot
    state and start the background work.  On failure the store is closed."""
    try:
        core.store.migrate()
        core.pricing.start()
        core.spend.reload(core.clock())
        core.sync.watch_budgets()  # the fingerprint later changes are compared with
        core.hot.start()
        # with a shared state every process reads spend from it: no commit is announced
        core.store.announce_changes = not core.hot.shared
        if not core.hot.shared:
            core.spend.follow(core.store.changes())
        if core.drain is not None:
            core.drain.start()  # replays dead processes' journals first
    except Exception:
        core.store.close()
        raise
    core.desk.start()
    core.worker.start()


def stop(core: Core) -> None:
    """Stop the background work, write what is buffered, release the database."""
    core.worker.stop()
    try:
        if core.drain is not None:
            core.drain.close()  # every journaled job into the ledger
        flush(core)
        core.desk.stop()
    finally:
        core.store.close()
        core.hot.close()
