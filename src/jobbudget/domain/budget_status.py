"""A budget's status now: its spend in the current period, how full it is, and what
enforcement would do.  Built by the service (``get_budget_status``) and read by the
analytics use cases and every adapter; defined here so that none of them needs the
service to name it (``jobbudget.service.BudgetStatus`` re-exports it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .budget import Budget
from .enforcement import EnforcementAction

__all__ = ["BudgetStatus"]


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """``period_start``/``period_end`` are the current period's dates, None when no
    period of the budget holds now (not yet started, or a custom period that is over).
    ``budget`` is the budget as stored; ``amount_in_force`` what this period allows
    (its amount plus what the previous period carried over and the raises in force),
    which ``utilization`` and ``action`` are measured against."""

    budget: Budget
    current_spend: Decimal
    utilization: Decimal
    action: EnforcementAction
    period_start: date | None
    period_end: date | None
    amount_in_force: Decimal | None = None
    carried: Decimal = Decimal(0)
    raised: Decimal = Decimal(0)

    @property
    def amount(self) -> Decimal:
        """The amount in force (the stored one when nothing changes it)."""
        return self.budget.amount if self.amount_in_force is None else self.amount_in_force
