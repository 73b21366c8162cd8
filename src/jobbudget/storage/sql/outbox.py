"""Alerts and the delivery outbox on SQL.

Alerts are unique per (budget, type, period): inserting one that exists does
nothing, so any number of processes can try and exactly one event results.  Each new
alert gets one ``deliveries`` row per subscribed channel in the same transaction.
Dispatchers claim deliveries with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` serialises them); a dispatcher that dies mid-send leaves
a lease that expires, and the delivery is tried again (receivers dedupe by event id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...domain.alerts import (
    RESENDABLE,
    Alert,
    AlertEvent,
    DeliveryState,
    PendingDelivery,
    PlannedAlert,
    channel_key,
    not_resendable,
)
from ...domain.budget import redact_target
from ...domain.codec import channel_from_mapping, to_jsonable
from ...domain.errors import ConflictError, NotFoundError
from .engine import transaction
from .tables import alerts, deliveries

__all__ = ["OutboxMixin", "insert_alerts"]

_EVENT_FIELDS = (
    "id", "type", "budget_id", "tenant_id", "queue_name", "period_start", "period_end", "occurred_at",
    "current_spend", "budget_amount", "utilization", "currency", "forecast_spend", "message",
)  # fmt: skip


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def insert_alerts(conn: Connection, planned: Sequence[PlannedAlert], now: datetime) -> list[AlertEvent]:
    """Write the planned alerts that do not exist yet, with their deliveries; return
    the events that were new."""
    new = []
    insert = _insert(conn)
    for plan in planned:
        event = plan.event
        stmt = (
            insert(alerts)
            .values({name: getattr(event, name) for name in _EVENT_FIELDS})
            .on_conflict_do_nothing(index_elements=["budget_id", "type", "period_start"])
            .returning(alerts.c.id)
        )
        if conn.execute(stmt).first() is None:
            continue
        new.append(event)
        if plan.channels:
            conn.execute(
                deliveries.insert(),
                [
                    {
                        "alert_id": event.id,
                        "channel_key": channel_key(channel),
                        "channel_type": channel.type,
                        "channel": to_jsonable(channel),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for channel in plan.channels
                ],
            )
    return new


def _event(row: Mapping[Any, Any]) -> AlertEvent:
    return AlertEvent(**{name: row[name] for name in _EVENT_FIELDS})


def _state(row: Mapping[Any, Any]) -> DeliveryState:
    channel = row["channel"]
    return DeliveryState(
        id=row["id"],
        channel_type=row["channel_type"],
        target=redact_target(row["channel_type"], str(channel.get("target", ""))),
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        sent_at=row["sent_at"],
        last_error=row["last_error"],
        channel_key=row["channel_key"],
    )


class OutboxMixin:
    """The alert and delivery methods of :class:`~jobbudget.storage.sql.store.SqlStore`."""

    engine: Engine

    def add_alerts(self, planned: Sequence[PlannedAlert], *, now: datetime) -> list[AlertEvent]:
        with transaction(self.engine, write=True) as conn:
            return insert_alerts(conn, planned, now)

    def fired_alerts(self, *, since: date) -> set[tuple[str, str, date]]:
        a = alerts.c
        with transaction(self.engine) as conn:
            rows = conn.execute(select(a.budget_id, a.type, a.period_start).where(a.period_start >= since))
            return {(b, t, p) for b, t, p in rows}

    def claim_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[PendingDelivery]:
        d = deliveries.c
        due = or_(
            and_(d.status == "pending", d.next_attempt_at <= now),
            and_(d.status == "sending", d.claimed_until < now),
        )
        pick = select(d.id).where(due).order_by(d.id).limit(limit)
        with transaction(self.engine, write=True) as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            ids = [row[0] for row in conn.execute(pick)]
            if not ids:
                return []
            conn.execute(update(deliveries).where(d.id.in_(ids)).values(status="sending", claimed_until=lease_until))
            return self._pending(conn, d.id.in_(ids))

    def _pending(self, conn: Connection, where: Any) -> list[PendingDelivery]:
        d = deliveries.c
        query = select(deliveries, *(alerts.c[name].label(f"a_{name}") for name in _EVENT_FIELDS)).join(
            alerts, alerts.c.id == d.alert_id
        )
        out = []
        for row in conn.execute(query.where(where).order_by(d.id)).mappings():
            event = AlertEvent(**{name: row[f"a_{name}"] for name in _EVENT_FIELDS})
            out.append(
                PendingDelivery(
                    id=row["id"],
                    event=event,
                    channel=channel_from_mapping(row["channel"]),
                    channel_key=row["channel_key"],
                    attempts=row["attempts"],
                )
            )
        return out

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
        with transaction(self.engine, write=True) as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status=status,
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    last_error=last_error,
                    sent_at=sent_at,
                    digest_id=digest_id,
                    claimed_until=None,
                )
            )

    def count_sent(self, *, channel_key: str, since: datetime) -> int:
        d = deliveries.c
        recent = (d.channel_key == channel_key, d.sent_at >= since)
        with transaction(self.engine) as conn:
            single = conn.execute(select(func.count()).where(*recent, d.digest_id.is_(None))).scalar() or 0
            digests = conn.execute(select(func.count(func.distinct(d.digest_id))).where(*recent)).scalar() or 0
        return int(single) + int(digests)  # a digest is one message however many events it holds

    def held_deliveries(self, *, limit: int = 1000) -> list[PendingDelivery]:
        with transaction(self.engine) as conn:
            return self._pending(conn, deliveries.c.status == "held")[:limit]

    def requeue_delivery(self, delivery_id: int, *, now: datetime) -> None:
        d = deliveries.c
        with transaction(self.engine, write=True) as conn:
            done = conn.execute(
                update(deliveries)
                .where(
                    d.id == delivery_id,
                    d.status.in_(RESENDABLE),
                    or_(d.claimed_until.is_(None), d.claimed_until < now),  # not being sent right now
                )
                .values(status="pending", attempts=0, next_attempt_at=now, last_error=None, claimed_until=None)
            )
            if done.rowcount == 0:
                found = conn.execute(select(d.status, d.claimed_until).where(d.id == delivery_id)).first()
                if found is None:
                    raise NotFoundError("delivery", str(delivery_id))
                raise ConflictError(not_resendable(delivery_id, found.status, found.claimed_until, now))

    def list_alerts(
        self, *, tenant_id: str | None = None, active_since: date | None = None, limit: int = 500
    ) -> list[Alert]:
        """Newest first; ``active_since``: only unacknowledged alerts of periods that
        end on or after that date."""
        a = alerts.c
        query = select(alerts).order_by(a.occurred_at.desc(), a.id).limit(limit)
        if tenant_id is not None:
            query = query.where(a.tenant_id == tenant_id)
        if active_since is not None:
            query = query.where(a.acknowledged_at.is_(None), a.period_end >= active_since)
        with transaction(self.engine) as conn:
            rows = list(conn.execute(query).mappings())
            states: dict[str, list[DeliveryState]] = {}
            ids = [r["id"] for r in rows]
            for i in range(0, len(ids), 500):
                found = conn.execute(
                    select(deliveries).where(deliveries.c.alert_id.in_(ids[i : i + 500])).order_by(deliveries.c.id)
                )
                for d in found.mappings():
                    states.setdefault(d["alert_id"], []).append(_state(d))
        return [
            Alert(
                event=_event(r),
                acknowledged_at=r["acknowledged_at"],
                acknowledged_by=r["acknowledged_by"],
                deliveries=tuple(states.get(r["id"], ())),
            )
            for r in rows
        ]

    def acknowledge_alert(self, alert_id: str, *, by: str, at: datetime) -> None:
        with transaction(self.engine, write=True) as conn:
            done = conn.execute(
                update(alerts).where(alerts.c.id == alert_id).values(acknowledged_at=at, acknowledged_by=by)
            )
            if done.rowcount == 0:
                raise NotFoundError("alert", alert_id)
