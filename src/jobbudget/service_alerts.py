"""Alerting use cases of :class:`jobbudget.service.BudgetService`: which events a
batch, a bypass or a period change fires, and alerts as data (list, acknowledge,
re-send).  Delivery itself is the dispatcher's (``jobbudget.notify``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from .config import Config
from .counters.memory import BudgetState, SpendIndex
from .domain.alerts import (
    THRESHOLD_EVENTS,
    Alert,
    AlertEvent,
    AlertPlan,
    AlertRule,
    PlannedAlert,
    channel_key,
    subscribed,
)
from .domain.budget import Budget, NotificationChannel
from .domain.errors import JobBudgetError, NotFoundError, ValidationError
from .domain.outbound import check_channel_target
from .domain.periods import PeriodWindow, window_at
from .domain.records import AuditEntry, JobRecord
from .domain.validation import MAX_ID_LEN, check_identifier
from .ports import Store

if TYPE_CHECKING:
    from .notify.dispatcher import DispatchResult
    from .service import BudgetService

__all__ = ["AlertsMixin"]

log = logging.getLogger("jobbudget")
FiredKey = tuple[str, str, date]


class AlertsMixin:
    """Mixed into BudgetService (which sets the attributes declared here)."""

    config: Config
    _store: Store
    _index: SpendIndex
    _write: threading.RLock
    _state: threading.Lock
    _fired: set[FiredKey]
    _alerts_ready: threading.Event

    def now(self) -> datetime:
        raise NotImplementedError

    def _as_service(self) -> BudgetService:
        from .service import BudgetService

        assert isinstance(self, BudgetService)
        return self

    # -- which events fire ---------------------------------------------------------
    def _channels_of(self, budget: Budget) -> tuple[NotificationChannel, ...]:
        return (*budget.notifications, *self._global_channels())

    def _global_channels(self) -> tuple[NotificationChannel, ...]:
        cached: tuple[NotificationChannel, ...] | None = getattr(self, "_global_channel_cache", None)
        if cached is None:
            cached = tuple(self.config.channels())
            self._global_channel_cache = cached
        return cached

    def _alert_plan(
        self, records: Sequence[JobRecord], ends: dict[tuple[str, date], date], now: datetime
    ) -> AlertPlan | None:
        """The rules of the budgets this batch touches that still have a threshold
        event to fire in a touched period (None when there is nothing to watch)."""
        rules: dict[str, AlertRule] = {}
        channels: dict[str, tuple[NotificationChannel, ...]] = {}
        for budget_id, start in ends:
            if budget_id in rules or all((budget_id, t, start) in self._fired for t in THRESHOLD_EVENTS):
                continue
            state = self._index.get(budget_id)
            if state is None:
                continue
            rules[budget_id] = AlertRule.of(state.budget)
            channels[budget_id] = self._channels_of(state.budget)
        if not rules:
            return None
        return AlertPlan(rules=rules, period_ends=ends, fired=self._fired, channels=channels, now=now)

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
        return PlannedAlert(event, tuple(subscribed(kind, self._channels_of(budget))))

    def _store_alerts(self, planned: list[PlannedAlert], now: datetime) -> list[AlertEvent]:
        if not planned:
            return []
        new = self._store.add_alerts(planned, now=now)
        with self._write:
            self._fired.update((p.event.budget_id, p.event.type, p.event.period_start) for p in planned)
        self._announce(new)
        return new

    def _announce(self, events: Iterable[AlertEvent]) -> None:
        any_new = False
        for event in events:
            any_new = True
            log.info("alert %s %s for budget %s (%s)", event.id, event.type, event.budget_id, event.tenant_id)
        if any_new:
            self._alerts_ready.set()

    def _budget_changed_alerts(self, budget: Budget, window: PeriodWindow | None, spend: Decimal) -> None:
        """A budget set (or changed) so that its period's spend already crosses a
        threshold fires that alert now: a blocked queue may never see another job."""
        if window is None or budget.id is None or not budget.active:
            return
        key = (budget.id, window.start_date)
        plan = AlertPlan(
            rules={budget.id: AlertRule.of(budget)},
            period_ends={key: window.end_date},
            fired=self._fired,
            channels={budget.id: self._channels_of(budget)},
            now=self.now(),
        )
        self._store_alerts(plan.events_for({key: spend}), plan.now)

    def _bypass_alerts(self, entries: Sequence[AuditEntry]) -> None:
        """One ``bypass`` alert per budget period in which a bypass was used."""
        now = self.now()
        planned = []
        seen: set[FiredKey] = set()
        with self._state:
            for entry in entries:
                if entry.kind != "bypass":
                    continue
                state = self._index.get(entry.budget_id)
                window = state.window if state is not None else None
                if state is None or window is None:
                    continue
                key = (entry.budget_id, "bypass", window.start_date)
                if key in self._fired or key in seen:
                    continue
                seen.add(key)
                planned.append(self._event("bypass", state, window, now, spend=state.spend))
        self._store_alerts(planned, now)

    def _lifecycle_alerts(self) -> None:
        """``reset`` when a recurring budget has entered a new period, and
        ``forecast_overrun`` when the forecast ends the period over budget."""
        from .analytics.forecasts import get_forecast  # numpy: only when needed

        now = self.now()
        with self._state:
            states = [replace(s) for s in self._index.states()]
        planned = []
        for state in states:
            budget = state.budget
            window = window_at(budget.period, now)
            if window is None or budget.id is None:
                continue
            start = window.start_date
            began_before = budget.created_at is not None and budget.created_at < window.start
            if window.index > 0 and began_before and (budget.id, "reset", start) not in self._fired:
                planned.append(self._event("reset", state, window, now, spend=state.spend))
            if (budget.id, "forecast_overrun", start) in self._fired:
                continue
            try:
                forecast = get_forecast(self._as_service(), tenant_id=budget.tenant_id, queue_name=budget.queue_name)
            except (NotFoundError, ValidationError):
                continue
            if forecast.predicted_spend > budget.amount and forecast.period_end == window.end_date:
                planned.append(
                    self._event(
                        "forecast_overrun", state, window, now, spend=state.spend, forecast=forecast.predicted_spend
                    )
                )
        self._store_alerts(planned, now)

    def _load_fired(self, windows: Iterable[PeriodWindow | None]) -> None:
        starts = [w.start_date for w in windows if w is not None]
        since = min(starts) if starts else self.now().date() - timedelta(days=400)
        self._fired = self._store.fired_alerts(since=since)

    # -- alerts as data ------------------------------------------------------------
    def list_alerts(
        self, tenant_id: str | None = None, *, active_only: bool = False, limit: int = 500, details: bool = True
    ) -> list[Alert]:
        """Alerts newest first, each with its deliveries per channel (targets
        redacted); ``active_only``: not acknowledged and of a period not yet over.
        ``details=False`` is what a tenant is shown: only the deliveries to its budgets'
        own channels (not to the configuration's ``notification_channels``), and failures
        without their reasons, which name hosts, ports and what the receiver answered."""
        active_since = self.now().date() if active_only else None
        found = self._store.list_alerts(tenant_id=tenant_id, active_since=active_since, limit=limit)
        if details:
            return found
        budgets = self._store.list_budgets(tenant_id=tenant_id, include_inactive=True)
        own = {channel_key(c) for budget in budgets for c in budget.notifications}
        return [
            replace(alert, deliveries=tuple(d.for_tenant() for d in alert.deliveries if d.channel_key in own))
            for alert in found
        ]

    def acknowledge_alert(self, alert_id: str, by: str) -> None:
        check_identifier("alert_id", alert_id, max_len=MAX_ID_LEN)
        if not isinstance(by, str) or not by.strip() or len(by) > 100:
            raise ValidationError("by", by, "must name who acknowledges (at most 100 characters)")
        check_identifier("by", by.strip(), max_len=100)
        self._store.acknowledge_alert(alert_id, by=by.strip(), at=self.now())

    def resend_delivery(self, delivery_id: int) -> None:
        """Send a delivery again now: failed (dead-lettered), sent, or still waiting
        (a retry, a rate limit).  ConflictError while it is being sent."""
        self._store.requeue_delivery(delivery_id, now=self.now())
        self._alerts_ready.set()

    # -- delivery ------------------------------------------------------------------
    def _start_dispatcher(self) -> None:
        from .notify.dispatcher import Dispatcher

        self._dispatcher = Dispatcher(store=self._store, config=self.config, clock=self.now)
        self._dispatch_lock = threading.Lock()
        self._dispatch_stop = threading.Event()
        self._dispatch_thread: threading.Thread | None = None
        if self.config.notifications_in_background:
            self._dispatch_thread = threading.Thread(target=self._dispatch_loop, name="jobbudget-notify", daemon=True)
            self._dispatch_thread.start()

    def _dispatch_loop(self) -> None:
        while not self._dispatch_stop.is_set():
            self._alerts_ready.wait(1.0)
            self._alerts_ready.clear()
            if self._dispatch_stop.is_set():
                break
            try:
                with self._dispatch_lock:
                    self._dispatcher.run(timeout=30.0)
            except JobBudgetError as exc:
                log.warning("notification dispatch failed (will retry): %s", exc)

    def _stop_dispatcher(self) -> None:
        self._dispatch_stop.set()
        self._alerts_ready.set()
        if self._dispatch_thread is not None:
            self._dispatch_thread.join(timeout=35)
        self._dispatcher.close()

    def dispatch_notifications(self, timeout: float = 30.0) -> DispatchResult:
        """Deliver what is due now, synchronously, for at most ``timeout`` seconds
        (the background dispatcher does the same continuously)."""
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
            raise ValidationError("timeout", timeout, "must be a number of seconds in (0, 3600]")
        with self._dispatch_lock:
            return self._dispatcher.run(timeout=float(timeout))

    def send_test_notification(self, channel: NotificationChannel) -> None:
        """Send a clearly labelled test message through ``channel`` now (raises
        :class:`jobbudget.notify.base.DeliveryError` when it cannot be delivered)."""
        from .notify.base import send_test

        if not isinstance(channel, NotificationChannel):
            raise ValidationError("channel", type(channel).__name__, "must be a NotificationChannel")
        send_test(channel, self.config, now=self.now())

    def send_budget_test_notification(self, budget_id: str, index: int) -> None:
        """Send a test message through the budget's channel number ``index`` (0-based),
        with the stored secrets (which callers of the API never see)."""
        budget = self._store.get_budget(budget_id)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(budget.notifications):
            raise ValidationError(
                "index", index, f"budget {budget_id} has {len(budget.notifications)} notification channel(s)"
            )
        channel = budget.notifications[index]
        check_channel_target(self.config.outbound_policy(), channel, f"notifications[{index}].target")
        self.send_test_notification(channel)

    def _safe_lifecycle(self) -> None:
        try:
            self._lifecycle_alerts()
        except JobBudgetError as exc:
            log.warning("lifecycle alerts failed (will retry): %s", exc)
