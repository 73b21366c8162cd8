"""Which alerts fire: a batch's threshold crossings (written in the batch's own
transaction), a budget changed past a threshold, bypasses, a new period (``reset``)
and a forecast over budget (``forecast_overrun``).  Each fires once per budget
period; delivery is the dispatcher's (``jobbudget.notify``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from ..config import Config
from ..counters.memory import BudgetState
from ..domain.alerts import THRESHOLD_EVENTS, AlertEvent, AlertPlan, AlertRule, PlannedAlert, subscribed
from ..domain.budget import Budget, NotificationChannel
from ..domain.errors import JobBudgetError, NotFoundError, ValidationError
from ..domain.periods import PeriodWindow, window_at
from ..domain.records import AuditEntry, JobRecord
from ..ports import Outbox
from .spend_state import SpendState

if TYPE_CHECKING:
    from ..domain.forecasting import Forecast  # numpy: only when a forecast is made

__all__ = ["AlertPlanner", "FiredKey"]

log = logging.getLogger("jobbudget")
FiredKey = tuple[str, str, date]
#: The forecast of a budget's scope: (tenant, queue) -> forecast (NotFoundError: none).
ForecastOf = Callable[[str, str], "Forecast"]


class AlertPlanner:
    def __init__(
        self,
        outbox: Outbox,
        *,
        spend: SpendState,
        config: Config,
        clock: Callable[[], datetime],
        ready: threading.Event,
    ) -> None:
        self._outbox = outbox
        self._spend = spend
        self._config = config
        self._clock = clock
        self.ready = ready  # wakes the dispatcher
        self.fired: set[FiredKey] = set()  # alerts already written, per period
        self._global: tuple[NotificationChannel, ...] | None = None
        self.forecast: ForecastOf | None = None  # set by the composition root (analytics)

    def channels_of(self, budget: Budget) -> tuple[NotificationChannel, ...]:
        if self._global is None:
            self._global = tuple(self._config.channels())
        return (*budget.notifications, *self._global)

    def load_fired(self, windows: Iterable[PeriodWindow | None]) -> None:
        starts = [w.start_date for w in windows if w is not None]
        since = min(starts) if starts else self._clock().date() - timedelta(days=400)
        self.fired = self._outbox.fired_alerts(since=since)

    def plan(self, records: Sequence[JobRecord], ends: dict[tuple[str, date], date], now: datetime) -> AlertPlan | None:
        """The rules of the budgets this batch touches that still have a threshold
        event to fire in a touched period (None when there is nothing to watch)."""
        rules: dict[str, AlertRule] = {}
        channels: dict[str, tuple[NotificationChannel, ...]] = {}
        for budget_id, start in ends:
            if budget_id in rules or all((budget_id, t, start) in self.fired for t in THRESHOLD_EVENTS):
                continue
            state = self._spend.index.get(budget_id)
            if state is None:
                continue
            rules[budget_id] = AlertRule.of(state.budget)
            channels[budget_id] = self.channels_of(state.budget)
        if not rules:
            return None
        return AlertPlan(rules=rules, period_ends=ends, fired=self.fired, channels=channels, now=now)

    def announce(self, events: Iterable[AlertEvent]) -> None:
        any_new = False
        for event in events:
            any_new = True
            log.info("alert %s %s for budget %s (%s)", event.id, event.type, event.budget_id, event.tenant_id)
        if any_new:
            self.ready.set()

    def budget_changed(self, budget: Budget, window: PeriodWindow | None, spend: Decimal) -> None:
        """A budget set (or changed) so that its period's spend already crosses a
        threshold fires that alert now: a blocked queue may never see another job."""
        if window is None or budget.id is None or not budget.active:
            return
        key = (budget.id, window.start_date)
        plan = AlertPlan(
            rules={budget.id: AlertRule.of(budget)},
            period_ends={key: window.end_date},
            fired=self.fired,
            channels={budget.id: self.channels_of(budget)},
            now=self._clock(),
        )
        self._store(plan.events_for({key: spend}), plan.now)

    def bypasses(self, entries: Sequence[AuditEntry]) -> None:
        """One ``bypass`` alert per budget period in which a bypass was used."""
        now = self._clock()
        planned = []
        seen: set[FiredKey] = set()
        with self._spend.lock:
            for entry in entries:
                if entry.kind != "bypass":
                    continue
                state = self._spend.index.get(entry.budget_id)
                window = state.window if state is not None else None
                if state is None or window is None:
                    continue
                key = (entry.budget_id, "bypass", window.start_date)
                if key in self.fired or key in seen:
                    continue
                seen.add(key)
                planned.append(self._event("bypass", state, window, now, spend=state.spend))
        self._store(planned, now)

    def sweep(self) -> None:
        """Threshold alerts the ledger's spend calls for that nobody wrote.  A batch
        writes the alerts its spend fires itself; on PostgreSQL a single job's alerts
        follow its commit in a transaction of their own, and two jobs on different
        spend shards may cross a threshold together with neither seeing the other's
        spend: both are found here, within two seconds (each alert still exists once)."""
        now = self._clock()
        with self._spend.lock:
            states = [s for s in self._spend.index.states() if s.key is not None and s.window is not None]
            watched = [
                (s.budget, s.key, s.window)
                for s in states
                if s.key is not None
                and s.window is not None
                and not all((s.key.budget_id, t, s.key.period_start) in self.fired for t in THRESHOLD_EVENTS)
            ]
        if not watched:
            return
        spend = self._spend.ledger_spend([key for _, key, _ in watched])
        plan = AlertPlan(
            rules={key.budget_id: AlertRule.of(budget) for budget, key, _ in watched},
            period_ends={(key.budget_id, key.period_start): window.end_date for _, key, window in watched},
            fired=self.fired,
            channels={key.budget_id: self.channels_of(budget) for budget, key, _ in watched},
            now=now,
        )
        self._store(plan.events_for({(k.budget_id, k.period_start): v for k, v in spend.items()}), now)

    def safe_sweep(self) -> None:
        try:
            self.sweep()
        except JobBudgetError as exc:
            log.warning("threshold sweep failed (will retry): %s", exc)

    def lifecycle(self) -> None:
        """``reset`` when a recurring budget has entered a new period, and
        ``forecast_overrun`` when the forecast ends the period over budget."""
        now = self._clock()
        with self._spend.lock:
            states = [replace(s) for s in self._spend.index.states()]
        planned = []
        for state in states:
            budget = state.budget
            window = window_at(budget.period, now)
            if window is None or budget.id is None:
                continue
            start = window.start_date
            began_before = budget.created_at is not None and budget.created_at < window.start
            if window.index > 0 and began_before and (budget.id, "reset", start) not in self.fired:
                planned.append(self._event("reset", state, window, now, spend=state.spend))
            if (budget.id, "forecast_overrun", start) in self.fired or self.forecast is None:
                continue
            try:
                forecast = self.forecast(budget.tenant_id, budget.queue_name)
            except (NotFoundError, ValidationError):
                continue
            if forecast.predicted_spend > budget.amount and forecast.period_end == window.end_date:
                planned.append(
                    self._event(
                        "forecast_overrun", state, window, now, spend=state.spend, forecast=forecast.predicted_spend
                    )
                )
        self._store(planned, now)

    def safe_lifecycle(self) -> None:
        try:
            self.lifecycle()
        except JobBudgetError as exc:
            log.warning("lifecycle alerts failed (will retry): %s", exc)

    def _event(
        self,
        kind: str,
        state: BudgetState,
        window: PeriodWindow,
        now: datetime,
        *,
        spend: Decimal,
        forecast: Decimal | None = None,
    ) -> PlannedAlert:
        budget = state.budget
        event = AlertRule.of(budget).event(
            kind, period_start=window.start_date, period_end=window.end_date, spend=spend, now=now, forecast=forecast
        )
        return PlannedAlert(event, tuple(subscribed(kind, self.channels_of(budget))))

    def _store(self, planned: list[PlannedAlert], now: datetime) -> list[AlertEvent]:
        if not planned:
            return []
        new = self._outbox.add_alerts(planned, now=now)
        with self._spend.write:
            self.fired.update((p.event.budget_id, p.event.type, p.event.period_start) for p in planned)
        self.announce(new)
        return new
