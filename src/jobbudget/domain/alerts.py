"""Alert events: what happened to a budget that people must hear about, exactly once
per (budget, event type, period).

``warning``, ``throttle`` and ``block`` fire when a period's spend crosses that
threshold (``amount × threshold``, exact); ``forecast_overrun`` when the forecast
says the period will end over budget; ``reset`` when a recurring budget rolls into
a new period; ``bypass`` when an emergency bypass was used.  Each event goes to every
enabled channel subscribed to its type.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from .budget import Budget, NotificationChannel
from .enforcement import utilization
from .money import EXACT, display_money

__all__ = [
    "RESENDABLE",
    "not_resendable",
    "ALERT_TYPES",
    "DELIVERY_STATES",
    "HIDDEN_DELIVERY_ERROR",
    "THRESHOLD_EVENTS",
    "Alert",
    "AlertEvent",
    "AlertPlan",
    "AlertRule",
    "DeliveryState",
    "PendingDelivery",
    "PlannedAlert",
    "channel_key",
    "crossed",
    "describe",
    "subscribed",
]

THRESHOLD_EVENTS = ("warning", "throttle", "block")
ALERT_TYPES = (*THRESHOLD_EVENTS, "forecast_overrun", "reset", "bypass")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One event, with the numbers that matter.  ``id`` is stable: every delivery of
    the event carries it, so receivers can drop duplicates."""

    id: str
    type: str
    budget_id: str
    tenant_id: str
    queue_name: str
    period_start: date
    period_end: date
    occurred_at: datetime
    current_spend: Decimal
    budget_amount: Decimal
    utilization: Decimal
    currency: str = "USD"
    forecast_spend: Decimal | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class AlertRule:
    """What the ledger needs to turn a budget period's new spend into events: the
    thresholds as absolute amounts (computed once) and the period's dates."""

    budget_id: str
    tenant_id: str
    queue_name: str
    currency: str
    amount: Decimal
    levels: tuple[tuple[str, Decimal], ...]  # (event type, spend at which it fires)

    @classmethod
    def of(cls, budget: Budget) -> AlertRule:
        assert budget.id is not None
        thresholds = (budget.warning_threshold, budget.throttle_threshold, budget.block_threshold)
        return cls(
            budget_id=budget.id,
            tenant_id=budget.tenant_id,
            queue_name=budget.queue_name,
            currency=budget.currency,
            amount=budget.amount,
            levels=tuple(
                (kind, EXACT.multiply(budget.amount, t)) for kind, t in zip(THRESHOLD_EVENTS, thresholds, strict=True)
            ),
        )

    def event(
        self,
        kind: str,
        *,
        period_start: date,
        period_end: date,
        spend: Decimal,
        now: datetime,
        forecast: Decimal | None = None,
    ) -> AlertEvent:
        """A new event of this budget, with a fresh id and its one-line message."""
        event = AlertEvent(
            id=str(uuid.uuid4()),
            type=kind,
            budget_id=self.budget_id,
            tenant_id=self.tenant_id,
            queue_name=self.queue_name,
            period_start=period_start,
            period_end=period_end,
            occurred_at=now,
            current_spend=spend,
            budget_amount=self.amount,
            utilization=utilization(spend, self.amount),
            currency=self.currency,
            forecast_spend=forecast,
        )
        return replace(event, message=describe(event))


def crossed(rule: AlertRule, spend: Decimal) -> list[str]:
    """The threshold events whose level ``spend`` has reached (lowest first)."""
    return [kind for kind, level in rule.levels if spend >= level]


def subscribed(event_type: str, channels: Sequence[NotificationChannel]) -> list[NotificationChannel]:
    """The enabled channels that want ``event_type``."""
    return [c for c in channels if c.enabled and event_type in c.events]


def describe(event: AlertEvent) -> str:
    """One line a person can act on: what crossed, the numbers, what happens next."""
    scope = f"{event.tenant_id}/{event.queue_name}" if event.queue_name else f"{event.tenant_id} (all queues)"
    numbers = (
        f"{display_money(event.current_spend)} of {display_money(event.budget_amount, event.currency)} "
        f"({event.utilization * 100:.1f}%) in {event.period_start}..{event.period_end}"
    )
    nexts = {
        "warning": "jobs still run; throttling starts at the throttle threshold",
        "throttle": "new jobs run at reduced capacity; they are blocked at the block threshold",
        "block": "new jobs are refused until the period ends or the budget is raised (emergency priority bypasses)",
        "forecast_overrun": (
            f"the forecast is {display_money(event.forecast_spend, event.currency)}: cut spend or raise the budget"
            if event.forecast_spend is not None
            else "the forecast ends over budget: cut spend or raise the budget"
        ),
        "reset": "a new period started: spend starts from zero",
        "bypass": "an emergency-priority job was let through past the throttle or block threshold (audited; "
        "it counts once it runs and reports its cost)",
    }
    return f"budget {event.type} for {scope}: {numbers}; {nexts.get(event.type, '')}".rstrip("; ")


# -- the outbox ----------------------------------------------------------------------
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "held", "digested")


def channel_key(channel: NotificationChannel) -> str:
    """A stable identity of a channel (its type and target), for rate limits."""
    return hashlib.sha256(f"{channel.type}\n{channel.target}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """An event to write with the deliveries it needs (one per subscribed channel)."""

    event: AlertEvent
    channels: tuple[NotificationChannel, ...]


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """What a batch of jobs may fire: the rules of the budgets it touches, each
    period's last day, the events already fired (skipped) and the global channels."""

    rules: dict[str, AlertRule]
    period_ends: dict[tuple[str, date], date]
    fired: AbstractSet[tuple[str, str, date]]
    channels: dict[str, tuple[NotificationChannel, ...]]  # budget id -> its channels (budget + global)
    now: datetime

    def events_for(self, spend: dict[tuple[str, date], Decimal]) -> list[PlannedAlert]:
        """Threshold events reached by the new spend of each (budget, period start)."""
        planned = []
        for (budget_id, start), amount in sorted(spend.items()):
            rule = self.rules.get(budget_id)
            end = self.period_ends.get((budget_id, start))
            if rule is None or end is None:
                continue
            for kind in crossed(rule, amount):
                if (budget_id, kind, start) in self.fired:
                    continue
                event = rule.event(kind, period_start=start, period_end=end, spend=amount, now=self.now)
                planned.append(PlannedAlert(event, tuple(subscribed(kind, self.channels.get(budget_id, ())))))
        return planned


#: Deliveries that can be sent again now: dead letters, sent ones, and those waiting
#: (for a retry or under the channel's rate limit), which are then sent at once.
RESENDABLE = ("failed", "sent", "pending", "held")


def not_resendable(delivery_id: int, status: str, claimed_until: datetime | None, now: datetime) -> str:
    """Why delivery ``delivery_id`` cannot be sent again now, for the person asking."""
    if claimed_until is not None and claimed_until >= now:
        return f"delivery {delivery_id} is being sent right now; see `jobbudget alerts list` in a moment"
    if status == "digested":
        return f"delivery {delivery_id} went out in a digest; resend the digest's delivery instead"
    return f"delivery {delivery_id} is {status} and cannot be sent again"


#: The only failure reason a tenant is shown: the real one names hosts, ports, HTTP
#: answers of the target and the SMTP server (see :meth:`DeliveryState.for_tenant`).
HIDDEN_DELIVERY_ERROR = "delivery failed (the reason is shown to administrators)"


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """Where one delivery of an alert stands (the target shown redacted).
    ``channel_key``: the channel's identity (:func:`channel_key`), shared by every
    delivery to the same channel and counted together by its rate limit."""

    id: int
    channel_type: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    channel_key: str = ""

    def for_tenant(self) -> DeliveryState:
        """The delivery as a tenant sees it: the failure without its reason."""
        return replace(self, last_error=HIDDEN_DELIVERY_ERROR if self.last_error else None)


@dataclass(frozen=True, slots=True)
class Alert:
    event: AlertEvent
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    deliveries: tuple[DeliveryState, ...]


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery claimed by a dispatcher (with the secrets it needs to send)."""

    id: int
    event: AlertEvent
    channel: NotificationChannel
    channel_key: str
    attempts: int
