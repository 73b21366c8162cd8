"""Alert events: what happened to a budget that people must hear about, exactly once
per (budget, event type, period).

``warning``, ``throttle`` and ``block`` fire when a period's spend crosses that
threshold (``amount × threshold``, exact); ``forecast_overrun`` when the forecast
says the period will end over budget; ``reset`` when a recurring budget rolls into
a new period; ``bypass`` when an emergency bypass was used.  Each event goes to every
enabled channel subscribed to its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from .budget import Budget, NotificationChannel
from .money import EXACT

__all__ = [
    "ALERT_TYPES",
    "THRESHOLD_EVENTS",
    "AlertEvent",
    "AlertRule",
    "crossed",
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
        f"{event.current_spend:,.2f} of {event.budget_amount:,.2f} {event.currency} "
        f"({event.utilization * 100:.1f}%) in {event.period_start}..{event.period_end}"
    )
    nexts = {
        "warning": "jobs still run; throttling starts at the throttle threshold",
        "throttle": "new jobs run at reduced capacity; they are blocked at the block threshold",
        "block": "new jobs are refused until the period ends or the budget is raised (emergency priority bypasses)",
        "forecast_overrun": (
            f"the forecast is {event.forecast_spend:,.2f} {event.currency}: cut spend or raise the budget"
            if event.forecast_spend is not None
            else "the forecast ends over budget: cut spend or raise the budget"
        ),
        "reset": "a new period started: spend starts from zero",
        "bypass": "an emergency-priority job ran past the limit (audited)",
    }
    return f"budget {event.type} for {scope}: {numbers}; {nexts.get(event.type, '')}".rstrip("; ")
