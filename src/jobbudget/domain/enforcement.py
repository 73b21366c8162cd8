"""The enforcement ladder: allow, warn, throttle, block, and the emergency bypass.

Decisions compare spend with ``amount × threshold`` exactly, so spend of exactly
90 % of the amount throttles under the default thresholds.  An emergency job (priority
at or above the policy's ``emergency_priority``) bypasses throttling and blocking only
while spend is below the block threshold plus ``max_bypass_fraction`` of the amount
(default 10 %): the bypass is capped per period, so it cannot become a loophole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .budget import Budget
from .money import EXACT, ZERO, display_money
from .periods import PeriodWindow

__all__ = [
    "ACTION_TYPES",
    "Admission",
    "EnforcementAction",
    "Thresholds",
    "decide",
    "most_restrictive",
    "reservation_limit",
]

ACTION_TYPES = ("allow", "warn", "throttle", "block")
_UTIL = Decimal("0.000001")
# Rank used to pick the most restrictive action: a bypassed block or throttle ranks
# above warn so that the bypass (which must be audited) is reported.
_RANK = {"allow": 0, "warn": 1, "bypass": 2, "throttle": 3, "block": 4}


@dataclass(frozen=True, slots=True)
class EnforcementAction:
    """What to do with a job about to be admitted."""

    type: str
    factor: float = 1.0
    message: str = ""
    budget_id: str | None = None
    utilization: Decimal = ZERO
    current_spend: Decimal = ZERO
    budget_amount: Decimal = ZERO
    bypass: bool = False
    #: the node (tenant, team, organisation) the deciding budget was set on
    tenant_id: str = ""

    @property
    def allowed(self) -> bool:
        return self.type != "block"


ALLOW = EnforcementAction(type="allow", message="no budget applies")


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of ``BudgetService.admit``: the action, and the reservation that
    holds the job's estimated cost against every budget covering it until the job is
    metered (``process_job_cost(..., reservation_id=...)``), released, or expires.
    ``reservation_id`` is None when the job was refused."""

    action: EnforcementAction
    reservation_id: str | None = None
    estimated_cost: Decimal = ZERO
    expires_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.action.allowed


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A budget's thresholds as absolute amounts, computed once."""

    warn_at: Decimal
    throttle_at: Decimal
    block_at: Decimal
    grace_until: datetime | None
    #: spend up to which an emergency job may still bypass: the block threshold plus
    #: the policy's ``max_bypass_fraction`` of the amount
    bypass_until: Decimal

    @classmethod
    def of(cls, budget: Budget) -> Thresholds:
        policy = budget.enforcement_policy
        hours = policy.grace_period_hours
        grace = budget.created_at + timedelta(hours=hours) if hours and budget.created_at else None
        block_at = EXACT.multiply(budget.amount, budget.block_threshold)
        return cls(
            warn_at=EXACT.multiply(budget.amount, budget.warning_threshold),
            throttle_at=EXACT.multiply(budget.amount, budget.throttle_threshold),
            block_at=block_at,
            grace_until=grace,
            bypass_until=EXACT.add(block_at, EXACT.multiply(budget.amount, policy.max_bypass_fraction)),
        )


def utilization(spend: Decimal, amount: Decimal) -> Decimal:
    """spend / amount to six decimal places (display only: decisions compare exactly)."""
    return (spend / amount).quantize(_UTIL, context=EXACT)  # the default context's 28 digits can overflow


def decide(
    *,
    budget: Budget,
    thresholds: Thresholds,
    window: PeriodWindow,
    spend: Decimal,
    priority: int,
    now: datetime,
) -> EnforcementAction:
    """Apply the ladder for one budget."""
    kind, note, bypass, factor = _classify(budget, thresholds, spend, priority, now)
    util = utilization(spend, budget.amount)
    message = _message(budget, window, kind, spend, util, factor) + note
    return EnforcementAction(
        type=kind,
        factor=factor,
        message=message,
        budget_id=budget.id,
        utilization=util,
        current_spend=spend,
        budget_amount=budget.amount,
        bypass=bypass,
        tenant_id=budget.tenant_id,
    )


def decide_each(
    entries: Sequence[tuple[Budget, Thresholds, PeriodWindow, Decimal]], *, priority: int, now: datetime
) -> list[EnforcementAction]:
    """The actions that matter of several budgets covering one job: the most
    restrictive one (as :func:`most_restrictive` would pick it) and every emergency
    bypass (they are audited), without formatting the others' messages (the cost
    of a check with budgets up a tree)."""
    if len(entries) < 2:
        return [decide(budget=b, thresholds=t, window=w, spend=s, priority=priority, now=now) for b, t, w, s in entries]
    best, best_rank, best_util = -1, (-1, 0.0), ZERO
    bypassed = []
    for i, (budget, thresholds, _, spend) in enumerate(entries):
        kind, _, bypass, factor = _classify(budget, thresholds, spend, priority, now)
        rank = (_RANK["bypass" if bypass else kind], -factor)
        # utilization breaks ties only (computing it for every budget costs more)
        if rank > best_rank or (rank == best_rank and utilization(spend, budget.amount) > best_util):
            best, best_rank, best_util = i, rank, utilization(spend, budget.amount)
        if bypass:
            bypassed.append(i)
    chosen = [best, *(i for i in bypassed if i != best)]
    return [
        decide(budget=b, thresholds=t, window=w, spend=s, priority=priority, now=now)
        for b, t, w, s in (entries[i] for i in chosen)
    ]


def _classify(
    budget: Budget, thresholds: Thresholds, spend: Decimal, priority: int, now: datetime
) -> tuple[str, str, bool, float]:
    """The ladder: (action type, a note for the message, bypass, throttle factor)."""
    policy = budget.enforcement_policy
    if spend >= thresholds.block_at:
        kind = "block" if policy.block_new_jobs else "throttle"
    elif spend >= thresholds.throttle_at:
        kind = "throttle"
    elif spend >= thresholds.warn_at:
        kind = "warn"
    else:
        kind = "allow"
    note = ""
    if kind in ("throttle", "block"):
        if policy.warn_only:
            kind, note = "warn", " (warn-only policy)"
        elif thresholds.grace_until is not None and now < thresholds.grace_until:
            kind, note = "warn", f" (grace period until {thresholds.grace_until:%Y-%m-%d %H:%M} UTC)"
    bypass = False
    if kind in ("throttle", "block") and policy.allow_emergency and priority >= policy.emergency_priority:
        if spend < thresholds.bypass_until:
            note = f" (emergency bypass of {kind} at priority {priority})"
            kind, bypass = "allow", True
        else:
            note = (
                f" (emergency bypass refused: the period's bypass allowance of "
                f"{policy.max_bypass_fraction * 100:.0f}% of the amount past the block threshold is used up)"
            )
    factor = policy.throttle_factor if kind == "throttle" else 1.0
    return kind, note, bypass, factor


def reservation_limit(*, budget: Budget, thresholds: Thresholds, priority: int, now: datetime) -> Decimal | None:
    """The most that spend plus open reservations may reach for a job of ``priority``
    to be admitted under ``budget``: its block threshold when the budget would block
    such a job, the end of the bypass allowance for an emergency priority that may
    bypass it, None when it never would block (warn-only, no blocking, grace period)."""
    policy = budget.enforcement_policy
    if policy.warn_only or not policy.block_new_jobs:
        return None
    if thresholds.grace_until is not None and now < thresholds.grace_until:
        return None
    if policy.allow_emergency and priority >= policy.emergency_priority:
        return thresholds.bypass_until
    return thresholds.block_at


def _message(budget: Budget, window: PeriodWindow, kind: str, spend: Decimal, util: Decimal, factor: float) -> str:
    head = (
        f"budget {budget.id} for {budget.scope}, {budget.period.type} "
        f"{window.start_date}..{window.end_date}: {display_money(spend)} of {display_money(budget.amount)} "
        f"{budget.currency} spent ({util * 100:.1f}%)"
    )
    if kind == "block":
        return head + ", new jobs blocked"
    if kind == "throttle":
        return head + f", throttled to {factor * 100:.0f}% capacity"
    if kind == "warn":
        return head + ", over the warning threshold"
    return head


def _rank(action: EnforcementAction) -> tuple[int, float, Decimal]:
    kind = "bypass" if action.bypass else action.type
    return (_RANK[kind], -action.factor, action.utilization)


def most_restrictive(actions: list[EnforcementAction]) -> EnforcementAction:
    """The action that wins when several budgets cover a job (no budget: allow)."""
    if not actions:
        return ALLOW
    return max(actions, key=_rank)
