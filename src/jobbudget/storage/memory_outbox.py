"""The in-memory store's alerts and delivery outbox (same contract as the SQL one)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from ..domain.alerts import (
    RESENDABLE,
    Alert,
    AlertEvent,
    DeliveryState,
    PendingDelivery,
    PlannedAlert,
    channel_key,
    not_resendable,
)
from ..domain.budget import NotificationChannel, redact_target
from ..domain.errors import ConflictError, NotFoundError

__all__ = ["MemoryOutbox"]


@dataclass(slots=True)
class _Delivery:
    id: int
    alert_id: str
    channel: NotificationChannel
    channel_key: str
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    digest_id: str | None = None


class MemoryOutbox:
    _lock: threading.RLock

    def _outbox_init(self) -> None:
        self._alerts: dict[str, Alert] = {}
        self._alert_keys: set[tuple[str, str, date]] = set()
        self._deliveries: dict[int, _Delivery] = {}
        self._delivery_ids = itertools.count(1)

    def _insert_alerts(self, planned: Sequence[PlannedAlert], now: datetime) -> list[AlertEvent]:
        new = []
        for plan in planned:
            e = plan.event
            key = (e.budget_id, e.type, e.period_start)
            if key in self._alert_keys:
                continue
            self._alert_keys.add(key)
            self._alerts[e.id] = Alert(event=e, acknowledged_at=None, acknowledged_by=None, deliveries=())
            for channel in plan.channels:
                did = next(self._delivery_ids)
                self._deliveries[did] = _Delivery(did, e.id, channel, channel_key(channel), next_attempt_at=now)
            new.append(e)
        return new

    def add_alerts(self, planned: Sequence[PlannedAlert], *, now: datetime) -> list[AlertEvent]:
        with self._lock:
            return self._insert_alerts(planned, now)

    def fired_alerts(self, *, since: date) -> set[tuple[str, str, date]]:
        with self._lock:
            return {k for k in self._alert_keys if k[2] >= since}

    def _pending(self, d: _Delivery) -> PendingDelivery:
        return PendingDelivery(
            id=d.id, event=self._alerts[d.alert_id].event, channel=d.channel, channel_key=d.channel_key,
            attempts=d.attempts,
        )  # fmt: skip

    def claim_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[PendingDelivery]:
        with self._lock:
            due = [
                d
                for d in sorted(self._deliveries.values(), key=lambda d: d.id)
                if (d.status == "pending" and d.next_attempt_at is not None and d.next_attempt_at <= now)
                or (d.status == "sending" and d.claimed_until is not None and d.claimed_until < now)
            ][:limit]
            for d in due:
                d.status, d.claimed_until = "sending", lease_until
            return [self._pending(d) for d in due]

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
    ) -> None:
        with self._lock:
            d = self._deliveries[delivery_id]
            d.status, d.attempts, d.next_attempt_at = status, attempts, next_attempt_at
            d.last_error, d.sent_at, d.digest_id, d.claimed_until = last_error, sent_at, digest_id, None

    def count_sent(self, *, channel_key: str, since: datetime) -> int:
        with self._lock:
            recent = [
                d for d in self._deliveries.values()
                if d.channel_key == channel_key and d.sent_at is not None and d.sent_at >= since
            ]  # fmt: skip
            return sum(d.digest_id is None for d in recent) + len({d.digest_id for d in recent if d.digest_id})

    def held_deliveries(self, *, limit: int = 1000) -> list[PendingDelivery]:
        with self._lock:
            held = sorted((d for d in self._deliveries.values() if d.status == "held"), key=lambda d: d.id)
            return [self._pending(d) for d in held[:limit]]

    def requeue_delivery(self, delivery_id: int, *, now: datetime) -> None:
        with self._lock:
            d = self._deliveries.get(delivery_id)
            if d is None:
                raise NotFoundError("delivery", str(delivery_id))
            if d.status not in RESENDABLE or (d.claimed_until is not None and d.claimed_until >= now):
                raise ConflictError(not_resendable(delivery_id, d.status, d.claimed_until, now))
            d.status, d.attempts, d.next_attempt_at, d.last_error, d.claimed_until = "pending", 0, now, None, None

    def list_alerts(
        self, *, tenant_id: str | None = None, active_since: date | None = None, limit: int = 500
    ) -> list[Alert]:
        with self._lock:
            found = [
                a for a in self._alerts.values()
                if tenant_id in (None, a.event.tenant_id)
                and (active_since is None or (a.acknowledged_at is None and a.event.period_end >= active_since))
            ]  # fmt: skip
            found.sort(key=lambda a: a.event.id)  # ties in id order, as the SQL stores
            found.sort(key=lambda a: a.event.occurred_at, reverse=True)
            return [replace(a, deliveries=self._states(a.event.id)) for a in found[:limit]]

    def _states(self, alert_id: str) -> tuple[DeliveryState, ...]:
        return tuple(
            DeliveryState(
                id=d.id,
                channel_type=d.channel.type,
                target=redact_target(d.channel.type, d.channel.target),
                status=d.status,
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at,
                sent_at=d.sent_at,
                last_error=d.last_error,
                channel_key=d.channel_key,
            )
            for d in sorted(self._deliveries.values(), key=lambda d: d.id)
            if d.alert_id == alert_id
        )

    def acknowledge_alert(self, alert_id: str, *, by: str, at: datetime) -> None:
        with self._lock:
            if alert_id not in self._alerts:
                raise NotFoundError("alert", alert_id)
            self._alerts[alert_id] = replace(self._alerts[alert_id], acknowledged_at=at, acknowledged_by=by)
