"""Corrections to spend after the fact, and changes to what a budget allows.

- An :class:`Adjustment` is a credit (negative) or debit (positive) of money with a
  reason: a refund of a job that failed for a system reason, a late charge, a
  correction of a past period.  It counts toward the budget periods that cover its
  tenant, queue and day, exactly like a job; reports show adjustments apart from jobs,
  so jobs and adjustments each add up and together make the spend.
- A refund is an adjustment of ``-job cost`` whose id is derived from the job, so a
  job is refunded at most once.  :class:`RefundPolicy` names the exit states refunded
  automatically (node failures, preemption: the platform's fault, not the tenant's).
- A :class:`BudgetRaise` adds to a budget's amount until it expires, approved by
  someone; the audit log keeps who and why.
- Rollover (:func:`carried`) moves a recurring budget's unused amount, or its overage,
  into the next period, capped at a fraction of the amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from .budget import MAX_AMOUNT
from .errors import ValidationError
from .money import ZERO, round_money
from .records import SpendKey

__all__ = [
    "ADJUSTMENT_KINDS",
    "DEFAULT_REFUND_STATES",
    "Adjustment",
    "BudgetRaise",
    "RefundPolicy",
    "carried",
    "refund_id",
]

ADJUSTMENT_KINDS = ("refund", "credit", "debit")
#: Slurm's states that are the platform's fault: a node failed, the job was preempted
#: or could not boot.
DEFAULT_REFUND_STATES = ("NODE_FAIL", "PREEMPTED", "BOOT_FAIL")
MAX_ADJUSTMENT = MAX_AMOUNT  # as a budget's amount: every sum fits both databases


@dataclass(frozen=True, slots=True)
class Adjustment:
    """``amount`` (negative: a credit) counted at ``occurred_at`` toward the budgets
    covering ``tenant_id`` and ``queue_name`` (a refund: the job's budgets); ``keys``
    are the periods it was counted toward, filled in when it is applied."""

    id: str
    kind: str
    tenant_id: str
    queue_name: str
    occurred_at: datetime
    amount: Decimal
    reason: str
    actor: str
    at: datetime
    job_id: str = ""
    keys: tuple[SpendKey, ...] = ()
    #: the labels of the job it corrects (a refund) or given with it: label budgets
    #: count it when they select them, as they count jobs
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def day(self) -> date:
        """The UTC day it counts on (reports)."""
        return self.occurred_at.astimezone(UTC).date()

    def __post_init__(self) -> None:
        if self.kind not in ADJUSTMENT_KINDS:
            raise ValidationError("kind", self.kind, f"must be one of {', '.join(ADJUSTMENT_KINDS)}")
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise ValidationError("amount", self.amount, "must be a finite amount")
        if self.amount.copy_abs() > MAX_ADJUSTMENT:  # copy_abs: no context, so no overflow
            raise ValidationError("amount", self.amount, f"must be at most {MAX_ADJUSTMENT:f} either way")
        if self.amount != round_money(self.amount):
            raise ValidationError("amount", self.amount, "must not be finer than a nano-dollar")
        if self.kind in ("refund", "credit") and self.amount > 0:
            raise ValidationError("amount", self.amount, f"a {self.kind} must not be positive")
        if self.kind == "debit" and self.amount < 0:
            raise ValidationError("amount", self.amount, "a debit must not be negative")
        reason = self.reason.strip() if isinstance(self.reason, str) else ""
        if not reason or len(reason) > 500 or not reason.isprintable():
            raise ValidationError("reason", self.reason, "must be one printable line of 1 to 500 characters")


def refund_id(tenant_id: str, job_id: str) -> str:
    """The id of a job's refund: the same for every attempt, so it happens once."""
    return f"refund:{tenant_id}:{job_id}"


@dataclass(frozen=True, slots=True)
class RefundPolicy:
    """Exit states whose jobs are refunded when metered (upper case, as Slurm writes
    them).  A retried job has a new id (or, for Slurm, a new record) and is charged."""

    states: tuple[str, ...] = DEFAULT_REFUND_STATES

    def refunds(self, exit_state: str) -> bool:
        return bool(exit_state) and exit_state.upper() in self.states


@dataclass(frozen=True, slots=True)
class BudgetRaise:
    """``amount`` more for ``budget_id`` from ``starts_at`` until ``expires_at``."""

    id: str
    budget_id: str
    amount: Decimal
    starts_at: datetime
    expires_at: datetime
    approver: str
    reason: str
    created_at: datetime
    created_by: str = "system"

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite() or self.amount <= 0:
            raise ValidationError("amount", self.amount, "must be an amount greater than 0")
        if self.amount.copy_abs() > MAX_ADJUSTMENT or self.amount != round_money(self.amount):
            raise ValidationError("amount", self.amount, f"must be at most {MAX_ADJUSTMENT:f}, to a nano-dollar")
        if not self.expires_at > self.starts_at:
            raise ValidationError("expires_at", self.expires_at.isoformat(), "must be after the start")
        for name in ("approver", "reason"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > 500 or not value.isprintable():
                raise ValidationError(name, value, "must be one printable line of 1 to 500 characters")

    def active_at(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.expires_at


def raised(raises: Iterable[BudgetRaise], instant: datetime) -> Decimal:
    """The sum of the raises in force at ``instant``."""
    return sum((r.amount for r in raises if r.active_at(instant)), ZERO)


def carried(*, mode: str, cap: Decimal, amount: Decimal, previous_amount: Decimal, previous_spend: Decimal) -> Decimal:
    """What a period inherits from the one before: its unused amount (positive) or its
    overage (negative), as ``mode`` allows, at most ``cap × amount`` either way."""
    left = previous_amount - previous_spend
    if (
        mode == "none"
        or (left > 0 and mode not in ("unused", "both"))
        or (left < 0 and mode not in ("overage", "both"))
    ):
        return ZERO
    limit = round_money(amount * cap)
    return max(-limit, min(limit, left))
