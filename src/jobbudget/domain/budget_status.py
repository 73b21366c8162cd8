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
    period of the budget holds now (not yet started, or a custom period that is over)."""

    budget: Budget
    current_spend: Decimal
    utilization: Decimal
    action: EnforcementAction
    period_start: date | None
    period_end: date | None
