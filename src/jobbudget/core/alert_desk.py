"""Alerts as data (list, acknowledge, re-send), their delivery by the dispatcher
(in the background, or on request), and test messages through a channel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from ..background import PeriodicWorker
from ..config import Config
from ..domain.alerts import Alert, channel_key
from ..domain.budget import NotificationChannel
from ..domain.errors import ValidationError
from ..domain.outbound import check_channel_target
from ..domain.validation import MAX_ID_LEN, check_identifier
from ..ports import Store

if TYPE_CHECKING:
    from ..notify.dispatcher import Dispatcher, DispatchResult

__all__ = ["AlertDesk"]


class AlertDesk:
    def __init__(
        self,
        store: Store,
        *,
        config: Config,
        clock: Callable[[], datetime],
        ready: threading.Event,
        make_dispatcher: Callable[[], Dispatcher],
        send_test: Callable[[NotificationChannel], None],
    ) -> None:
        self._store = store  # the outbox, and the budgets whose channels a tenant may see
        self._make_dispatcher = make_dispatcher  # the notify adapter, given by the composition root
        self._send_test = send_test
        self._config = config
        self._clock = clock
        self._ready = ready
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()  # one pass at a time: the background's or a caller's
        self._worker: PeriodicWorker | None = None

    # -- alerts as data ------------------------------------------------------------
    def list_alerts(self, tenant_id: str | None, *, active_only: bool, limit: int, details: bool) -> list[Alert]:
        active_since = self._clock().date() if active_only else None
        found = self._store.list_alerts(tenant_id=tenant_id, active_since=active_since, limit=limit)
        if details:
            return found
        budgets = self._store.list_budgets(tenant_id=tenant_id, include_inactive=True)
        own = {channel_key(c) for budget in budgets for c in budget.notifications}
        return [
            replace(alert, deliveries=tuple(d.for_tenant() for d in alert.deliveries if d.channel_key in own))
            for alert in found
        ]

    def acknowledge(self, alert_id: str, by: str) -> None:
        check_identifier("alert_id", alert_id, max_len=MAX_ID_LEN)
        if not isinstance(by, str) or not by.strip() or len(by) > 100:
            raise ValidationError("by", by, "must name who acknowledges (at most 100 characters)")
        check_identifier("by", by.strip(), max_len=100)
        self._store.acknowledge_alert(alert_id, by=by.strip(), at=self._clock())

    def resend(self, delivery_id: int) -> None:
        self._store.requeue_delivery(delivery_id, now=self._clock())
        self._ready.set()

    # -- delivery ------------------------------------------------------------------
    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = self._make_dispatcher()
        return self._dispatcher

    def start(self) -> None:
        """Deliver in the background (``notifications_in_background``): a pass every
        second and at once when new alerts are written, on the dispatcher's own
        periodic worker (a failing pass is logged and tried again)."""
        if self._config.notifications_in_background and self._worker is None:
            self._worker = self.dispatcher.in_background(lock=self._lock, wake=self._ready)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self._dispatcher is not None:
            self._dispatcher.close()

    def dispatch(self, timeout: float) -> DispatchResult:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
            raise ValidationError("timeout", timeout, "must be a number of seconds in (0, 3600]")
        with self._lock:
            return self.dispatcher.run(timeout=float(timeout))

    def send_test(self, channel: NotificationChannel) -> None:
        if not isinstance(channel, NotificationChannel):
            raise ValidationError("channel", type(channel).__name__, "must be a NotificationChannel")
        self._send_test(channel)

    def send_budget_test(self, budget_id: str, index: int) -> None:
        budget = self._store.get_budget(budget_id)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(budget.notifications):
            raise ValidationError(
                "index", index, f"budget {budget_id} has {len(budget.notifications)} notification channel(s)"
            )
        channel = budget.notifications[index]
        check_channel_target(self._config.outbound_policy(), channel, f"notifications[{index}].target")
        self.send_test(channel)
