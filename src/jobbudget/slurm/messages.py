"""What the user reads when ``sbatch`` consults jobbudget, and the reply
``job_submit.lua`` reads (``key=value`` lines: Slurm's Lua has no JSON).

A refused job::

    sbatch: error: budget acme/gpu: 5,102.40 of 5,000.00 USD spent this month (block at 100 %); resets 2027-01-01

The amounts of a budget set above the job's tenant (its team's or organisation's,
which counts other tenants' spend too) are not shown, only how full it is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from ..domain.budget import Budget
from ..domain.enforcement import EnforcementAction, Thresholds
from ..domain.money import display_money
from ..domain.periods import current_window

__all__ = ["decision_text", "reply"]

_THIS = {"daily": "today", "weekly": "this week", "monthly": "this month", "quarterly": "this quarter"}
_THIS["yearly"] = "this year"
_LABEL = {"warn": "warning"}


def reply(fields: Mapping[str, str]) -> str:
    """``key=value`` lines, one value per line (line breaks in a value become spaces)."""
    return "".join(f"{k}={' '.join(str(v).split())}\n" for k, v in fields.items())


def decision_text(
    action: EnforcementAction,
    budget: Budget | None,
    *,
    tenant_id: str,
    estimate: Decimal,
    now: datetime,
    spent: Decimal | None = None,
    effect: str = "",
) -> str:
    """One line for the user: the budget, its spend against its amount in the words of
    its period, the threshold that decided, what it means for this job (``effect``),
    and when the budget resets.  The action's spend counts what open reservations
    hold; ``spent`` (the budget's spend alone) tells the two apart."""
    if action.type == "allow" and not action.bypass:
        return ""
    if budget is None:
        return action.message
    thresholds = Thresholds.of(budget)
    kind = action.type
    #: refused by its reservation: spend plus open holds plus this job's estimate would pass the block
    held = kind == "block" and not action.bypass and action.current_spend < thresholds.block_at
    if budget.tenant_id != tenant_id:  # a team's or organisation's budget: other tenants' spend
        text = f"a budget of {tenant_id}'s team or organisation ({budget.tenant_id}) is {action.utilization * 100:.1f} % used"
    else:
        scope = budget.tenant_id + (f"/{budget.queue_name}" if budget.queue_name else "")
        if budget.labels:
            scope += " (" + ", ".join(f"{k}={v}" for k, v in sorted(budget.labels.items())) + ")"
        done = action.current_spend if spent is None else min(spent, action.current_spend)
        text = (
            f"budget {scope}: {display_money(done)} of {display_money(budget.amount)} "
            f"{budget.currency} spent{_period_words(budget, now)}"
        )
        if action.current_spend > done:
            text += f", {display_money(action.current_spend - done)} held for jobs not ended yet"
    if action.bypass:
        text += "; admitted on the budget's emergency allowance (emergency QOS)"
    elif held:
        text += (
            f"; this job's estimate {display_money(estimate)} {budget.currency} would pass the block at "
            f"{_percent(budget.block_threshold)}"
        )
    else:
        threshold = {"block": budget.block_threshold, "throttle": budget.throttle_threshold}.get(
            kind, budget.warning_threshold
        )
        if kind == "throttle" and action.current_spend >= thresholds.block_at:  # a budget that throttles, not blocks
            threshold = budget.block_threshold
        text += f" ({_LABEL.get(kind, kind)} at {_percent(threshold)})"
    if effect:
        text += f": {effect}"
    return text + _resets(budget, now)


def _percent(fraction: Decimal) -> str:
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text} %"


def _period_words(budget: Budget, now: datetime) -> str:
    words = _THIS.get(budget.period.type)
    if words is not None:
        return f" {words}"
    window = current_window(budget.period, now)
    return f" from {window.start_date} to {window.end_date}" if window else ""


def _resets(budget: Budget, now: datetime) -> str:
    window = current_window(budget.period, now)
    if window is None:
        return ""
    if budget.period.recurring:
        return f"; resets {window.end_date + timedelta(days=1)}"
    return f"; the budget ends {window.end_date}"
