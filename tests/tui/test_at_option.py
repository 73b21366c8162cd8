"""``jobbudget tui --at``: the moment given is what is shown, never when things happen.
A UI opened with ``--at 2013-03-31T23:59:59Z`` shows March 2013, and what is done in
it (a budget created or changed, an alert acknowledged) is stamped with the real time:
it used to say "Created 2013-03-31 by tui".  Driven through the command's own wiring
(:func:`jobbudget.cli.tui_cmd.local_app`) on a SQLite file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
from textual.widgets import DataTable, Input

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics
from jobbudget.cli.common import Settings
from jobbudget.cli.tui_cmd import local_app
from jobbudget.config import Config
from jobbudget.service import BudgetService
from jobbudget.tui.controls import ControlsPane
from jobbudget.tui.source import LocalSource

from .support import wait_until

pytestmark = pytest.mark.asyncio
AT = "2013-03-31T23:59:59Z"
THEN = datetime(2013, 3, 31, 23, 59, 59, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path) -> str:
    """March 2013: acme's monthly budget of 100 USD with 80 spent, so a warning fired."""
    url = f"sqlite:///{tmp_path / 'past.db'}"
    clock = FakeClock(datetime(2013, 3, 10, 12, 0, tzinfo=UTC))
    config = Config(
        database_url=url,
        notifications_in_background=False,
        cost_model={"cpu_time_weight": "0.0001", "base_job_weight": "0"},
    )
    zero = Decimal(0)
    job = JobMetrics(job_id="j1", tenant_id="acme", queue_name="q1", cpu_time=Decimal(800_000), timestamp=clock.now,
                     memory_mb_seconds=zero, payload_bytes=zero, redis_ops=zero, network_bytes=zero)  # fmt: skip
    with BudgetService(config, clock=clock) as service:
        service.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
        service.process_job_costs([job])  # 80 USD
        assert [a.event.type for a in service.list_alerts()] == ["warning"]
    return url


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def test_a_ui_opened_with_at_shows_then_and_writes_now(database: str) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    with local_app(Settings(None, database, False), at=AT, refresh=0) as app:
        service = cast(LocalSource, app.source).service
        async with app.run_test(size=(100, 40)) as pilot:
            await wait_until(pilot, lambda: app.data is not None, what="the first read")
            assert app.data is not None
            (view,) = app.data.dashboard.budgets  # shown as of --at: March 2013, 80 % spent
            assert app.data.dashboard.generated_at == THEN
            assert (view.period_start, view.spend, view.status) == (date(2013, 3, 1), Decimal(80), "Warning")

            # acknowledge the warning
            await pilot.press("4")
            alerts = app.query_one("#alerts-table", DataTable)
            await wait_until(pilot, lambda: alerts.display and alerts.row_count == 1, what="the alert row")
            await pilot.press("a")
            await wait_until(pilot, lambda: service.list_alerts()[0].acknowledged_at is not None, what="the ack")

            # change acme's amount, then create a budget for globex
            await pilot.press("3")
            pane = app.query_one(ControlsPane)
            budgets = pane.query_one("#budget-table", DataTable)
            await wait_until(pilot, lambda: budgets.row_count == 2, what="the budget picker")
            budgets.focus()
            budgets.move_cursor(row=0)
            await pilot.press("e")
            await wait_until(pilot, lambda: pane._editing is not None, what="the form to load")
            pane.query_one("#f-amount", Input).value = "120"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: service.list_budgets()[0].amount == Decimal(120), what="the update")
            await pilot.press("escape", "n", *"globex", "tab", "tab", *"50", "ctrl+s")
            await wait_until(pilot, lambda: len(service.list_budgets()) == 2, what="the new budget")

            # the display stays at --at: the new budget's period starts now, so not in force then
            await wait_until(pilot, lambda: app.data is not None and len(app.data.dashboard.budgets) == 2)
            assert app.data is not None and app.data.dashboard.generated_at == THEN
            shown = {v.budget.tenant_id: v for v in app.data.dashboard.budgets}
            assert (shown["acme"].spend, shown["acme"].status) == (Decimal(80), "OK")  # 80 of 120
            assert shown["globex"].status == "Idle"
    ended = datetime.now(UTC) + timedelta(seconds=1)

    with BudgetService(Config(database_url=database, notifications_in_background=False)) as service:
        budgets = {b.tenant_id: b for b in service.list_budgets()}
        globex, acme = budgets["globex"], budgets["acme"]
        assert started <= _aware(globex.created_at) <= ended, globex.created_at
        assert started <= _aware(globex.updated_at) <= ended
        assert globex.created_by == "tui"
        assert globex.period.start_date == started.date().replace(day=1)  # the current period, not March 2013
        assert _aware(acme.created_at) < datetime(2014, 1, 1, tzinfo=UTC)  # created in 2013, and still so
        assert started <= _aware(acme.updated_at) <= ended
        (alert,) = service.list_alerts()
        assert alert.acknowledged_by == "tui" and started <= _aware(alert.acknowledged_at) <= ended
        changes = service.list_audit(kind="budget_created") + service.list_audit(kind="budget_updated")
        made_here = [entry for entry in changes if entry.actor == "tui"]
        assert len(made_here) == 2 and all(started <= _aware(entry.at) <= ended for entry in made_here)
