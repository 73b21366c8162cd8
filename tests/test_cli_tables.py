"""Tables in narrow terminals: money, names and ids are never cut, at any width;
less important columns go first, then every row becomes a stacked block."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from rich.console import Console

from jobbudget.cli.render import budget_table, status_table
from jobbudget.domain.budget import Budget
from jobbudget.domain.enforcement import EnforcementAction
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.service import BudgetStatus

BUDGETS = [
    Budget(id="feeda6ad-e217-4370-8277-272fc411a95c", tenant_id="acme", queue_name="ml", amount=Decimal(8000),
           period=BudgetPeriod("monthly")),
    Budget(id="9960d01f-e3f0-4216-abd2-23e591b30e7a", tenant_id="globex-industries-research",
           queue_name="gpu-training-large", amount=Decimal("1234567.89"), period=BudgetPeriod("monthly")),
]  # fmt: skip


def shown(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("width", [200, 160, 120, 100, 90, 80, 70, 60, 50])
def test_budget_list_never_cuts_money_names_or_ids(width: int) -> None:
    text = shown(budget_table(BUDGETS, width=width), width)
    assert max(len(line) for line in text.splitlines()) <= width
    for b in BUDGETS:
        for whole in (str(b.id), b.tenant_id, b.queue_name):
            assert whole in text, (width, whole, text)
    assert "8,000.00 USD" in text and "1,234,567.89 USD" in text
    assert "…" not in text


@pytest.mark.parametrize("width", [160, 100, 80, 60, 50])
def test_status_never_cuts_money_or_names(width: int) -> None:
    statuses = [
        BudgetStatus(b, spend, spend / b.amount, EnforcementAction(type="warn"), date(2026, 12, 1), date(2026, 12, 31))
        for b, spend in zip(BUDGETS, (Decimal("6500.5"), Decimal("1000000")), strict=True)
    ]
    text = shown(status_table(statuses, width=width), width)
    assert max(len(line) for line in text.splitlines()) <= width
    for needle in ("acme", "globex-industries-research", "gpu-training-large", "6,500.50", "1,000,000.00",
                   "8,000.00 USD", "1,234,567.89 USD", "Warning"):  # fmt: skip
        assert needle in text, (width, needle, text)
    assert "…" not in text


def test_wide_terminals_show_the_whole_table() -> None:
    narrow = [Budget(id="b1", tenant_id="acme", queue_name="ml", amount=Decimal(5), period=BudgetPeriod("monthly"))]
    text = shown(budget_table(narrow, width=160), 160)
    for header in ("ID", "Tenant", "Queue", "Period", "Amount", "Thresholds", "Policy", "Notify", "Active"):
        assert header in text
