"""Rich renderings shared by the commands: budget tables, status bars, actions."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import RenderableType
from rich.text import Text

from ..domain.budget import Budget, EnforcementPolicy
from ..domain.budget_status import BudgetStatus
from ..domain.enforcement import EnforcementAction
from ..render.common import money_in as money
from .tables import Column, fit_table

__all__ = [
    "STATUS_LABELS",
    "action_text",
    "budget_table",
    "money",
    "percent",
    "policy_text",
    "thresholds_text",
    "status_json",
    "status_label",
    "status_table",
    "utilization_bar",
]

#: Action type -> (label, Rich style); distinct colours for each rung of the ladder.
STATUS_LABELS = {
    "allow": ("OK", "green"),
    "warn": ("Warning", "yellow"),
    "throttle": ("Throttle", "dark_orange"),
    "block": ("Block", "bold red"),
}
_NOT_IN_FORCE = ("Not in force", "dim")
_BAR_WIDTH = 20


def percent(ratio: Decimal) -> str:
    return f"{ratio * 100:.1f}%"


def status_label(status: BudgetStatus) -> tuple[str, str]:
    if status.period_start is None:
        return _NOT_IN_FORCE
    return STATUS_LABELS.get(status.action.type, (status.action.type, ""))


def utilization_bar(ratio: Decimal, style: str, width: int = _BAR_WIDTH) -> Text:
    """``█████░░░░░  52.3%``; the bar is full at 100 % and the figure shows overruns."""
    filled = max(0, min(width, int(ratio * width)))
    bar = Text("█" * filled, style=style)
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {percent(ratio):>7}")
    return bar


def _scope_queue(budget: Budget) -> str:
    return budget.queue_scope


def status_table(statuses: Sequence[BudgetStatus], *, title: str = "Budgets", width: int = 160) -> RenderableType:
    """Every status within ``width`` columns: names and money are never cut (see
    :func:`.tables.fit_table`; the period and the bar go first)."""
    columns = [
        Column("Tenant", keep=True),
        Column("Queue", keep=True),
        Column("Period", rank=2),
        Column("Spend", keep=True, justify="right"),
        Column("Amount", keep=True, justify="right"),
        Column("Utilization", rank=1, keep=True),
        Column("Status", keep=True),
    ]
    rows: list[list[str | Text]] = []
    for s in statuses:
        b = s.budget
        label, style = status_label(s)
        period = (
            f"{b.period.type} {s.period_start}..{s.period_end}" if s.period_start else f"{b.period.type} (none now)"
        )
        rows.append(
            [
                Text(b.tenant_id),
                Text(_scope_queue(b)),
                period,
                money(s.current_spend),
                money(s.amount, b.currency),
                utilization_bar(s.utilization, style),
                Text(label, style=style),
            ]
        )
    return fit_table(columns, rows, width=width, title=title)


def status_json(s: BudgetStatus) -> dict[str, Any]:
    b = s.budget
    return {
        "budget_id": b.id,
        "tenant_id": b.tenant_id,
        "queue_name": b.queue_name,
        "labels": dict(b.labels),
        "period_type": b.period.type,
        "period_start": s.period_start,
        "period_end": s.period_end,
        "current_spend": s.current_spend,
        "amount": s.amount,
        "stored_amount": b.amount,
        "carried": s.carried,
        "raised": s.raised,
        "currency": b.currency,
        "utilization": s.utilization,
        "status": status_label(s)[0],
        "action": s.action,
    }


def budget_table(budgets: Sequence[Budget], *, title: str = "Budgets", width: int = 160) -> RenderableType:
    """Budgets as stored, within ``width`` columns; notification targets are redacted.
    Ids, names and amounts are never cut; the policy, notifications and thresholds
    are left out first when the terminal is narrow."""
    columns = [
        Column("ID", keep=True),
        Column("Tenant", keep=True),
        Column("Queue", keep=True),
        Column("Period", rank=2),
        Column("Amount", keep=True, justify="right"),
        Column("Thresholds", rank=3),
        Column("Policy", rank=4),
        Column("Notify", rank=3),
        Column("Active", rank=1),
    ]
    rows: list[list[str | Text]] = []
    for b in budgets:
        safe = b.redacted()
        p = b.period
        cells = (
            str(b.id),
            b.tenant_id,
            _scope_queue(b),
            f"{p.type} from {p.start_date}" + ("" if p.timezone == "UTC" else f" ({p.timezone})"),
            money(b.amount, b.currency),
            thresholds_text(b),
            policy_text(b.enforcement_policy),
            "\n".join(f"{c.type}:{c.target}" for c in safe.notifications) or "-",
            "yes" if b.active else "no",
        )
        rows.append([Text(c) for c in cells])
    return fit_table(columns, rows, width=width, title=title)


def thresholds_text(budget: Budget) -> str:
    """``75% / 90% / 100%``: where the budget warns, throttles and blocks."""
    shares = (budget.warning_threshold, budget.throttle_threshold, budget.block_threshold)
    return " / ".join(f"{(t * 100).normalize():f}%" for t in shares)


def policy_text(policy: EnforcementPolicy) -> str:
    """``throttle ×0.5, block, bypass ≥9 up to +10%``: the policy in a few words."""
    rules = []
    if policy.warn_only:
        rules.append("warn only")
    else:
        rules.append(f"throttle ×{policy.throttle_factor:g}")
        rules.append("block" if policy.block_new_jobs else "no block")
    if policy.allow_emergency:
        rules.append(f"bypass ≥{policy.emergency_priority} up to +{policy.max_bypass_fraction * 100:g}%")
    else:
        rules.append("no bypass")
    if policy.grace_period_hours:
        rules.append(f"grace {policy.grace_period_hours}h")
    return ", ".join(rules)


def action_text(action: EnforcementAction) -> Text:
    """``Block: budget ... new jobs blocked`` in the colour of the action, with the
    same words as every status (OK, Warning, Throttle, Block)."""
    label, style = STATUS_LABELS.get(action.type, (action.type, ""))
    text = Text(label, style=style)
    if action.type == "throttle":
        text.append(f" (run at {action.factor * 100:.0f}% capacity)", style=style)
    if action.bypass:
        text.append(" (emergency bypass)", style="magenta")
    text.append(f": {action.message}" if action.message else f": {label}")
    return text
