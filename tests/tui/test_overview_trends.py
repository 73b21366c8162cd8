"""Pilot tests of the Overview and Trends tabs, the keys every tab shares, and the
live refresh, on the fixed data set."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, Select, Static, TabbedContent

from jobbudget.domain.cost import JobMetrics
from jobbudget.service import BudgetService
from jobbudget.tui.app import JobBudgetApp
from jobbudget.tui.help import HelpScreen
from jobbudget.tui.overview import OverviewPane
from jobbudget.tui.source import LocalSource
from jobbudget.tui.trends import TREND_DAYS, TrendsPane, breakdown_table
from jobbudget.tui.widgets import daily_chart

from .dataset import NOW, build_service
from .support import wait_until


@pytest.fixture
def service() -> Iterator[BudgetService]:
    service = build_service()
    yield service
    service.close()


def _cells(table: DataTable[object], column: int) -> list[str]:
    return [str(table.get_row_at(i)[column]).strip() for i in range(table.row_count)]


@pytest.mark.asyncio
async def test_tabs_switch_with_number_keys_and_help_opens(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 34)) as pilot:
        tabs = app.query_one(TabbedContent)
        for key, tab in (("2", "trends"), ("3", "controls"), ("4", "alerts"), ("1", "overview")):
            await pilot.press(key)
            assert tabs.active == tab
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "acknowledge the selected alert" in str(app.screen.query_one("#help-text", Static).render())
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.asyncio
async def test_overview_lists_every_budget_with_status_sorted_by_severity(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.query_one("#budgets-table", DataTable).row_count == 4)
        table = app.query_one("#budgets-table", DataTable)
        assert _cells(table, 0) == ["umbrella", "initech", "globex", "acme"]
        assert _cells(table, 2) == ["Block", "Throttle", "Warning", "OK"]
        spend = dict(zip(_cells(table, 0), _cells(table, 4), strict=True))
        assert spend["umbrella"] == "24.02"  # the exact spend, rounded to cents for display
        # s cycles the sort column: Utilization, then Spend (largest first)
        pane = app.query_one(OverviewPane)
        pane.focus()
        await pilot.press("s", "s")
        assert _cells(table, 0) == ["acme", "globex", "initech", "umbrella"]
        drivers = app.query_one("#drivers-table", DataTable)
        assert _cells(drivers, 0)[0] == "acme"
        total = sum(Decimal(c.replace(",", "")) for c in _cells(drivers, 3))
        assert total == Decimal("311.58")  # 160.02 + 80.02 + 47.52 + 24.02, this month only


@pytest.mark.asyncio
async def test_overview_filters_by_tenant_and_explains_an_empty_result(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 34)) as pilot:
        await wait_until(pilot, lambda: app.query_one("#budgets-table", DataTable).row_count == 4)
        await pilot.press("slash", *"glo", "enter")
        table = app.query_one("#budgets-table", DataTable)
        assert _cells(table, 0) == ["globex"]
        assert _cells(app.query_one("#drivers-table", DataTable), 0) == ["globex"]
        await pilot.press("slash", *"zzz")
        empty = app.query_one("#overview-empty", Static)
        assert "No budget of a tenant matching 'zzz'" in str(empty.render())
        await pilot.press("escape")
        assert table.row_count == 4
        await pilot.press("4")  # Escape left the filter field: the number keys switch tabs
        assert app.query_one(TabbedContent).active == "alerts"


@pytest.mark.asyncio
async def test_empty_database_says_what_to_do() -> None:
    from jobbudget.config import Config
    from jobbudget.storage.memory import MemoryStore

    empty = BudgetService(Config(), clock=lambda: NOW, store=MemoryStore())
    try:
        app = JobBudgetApp(LocalSource(empty), refresh_seconds=0)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.data is not None)
            assert "No budgets yet: press 3" in str(app.query_one("#overview-empty", Static).render())
            await pilot.press("2")
            assert "No budgets yet: press 3" in str(app.query_one("#trends-summary", Static).render())
    finally:
        empty.close()


@pytest.mark.asyncio
async def test_enter_opens_the_budget_in_trends_with_chart_breakdown_and_pattern(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.query_one("#budgets-table", DataTable).row_count == 4)
        table = app.query_one("#budgets-table", DataTable)
        table.focus()
        await pilot.press("down", "down", "enter")  # globex, the Warning budget
        assert app.query_one(TabbedContent).active == "trends"
        pane = app.query_one(TrendsPane)
        await wait_until(pilot, lambda: pane.trends is not None and pane.trends.budget.tenant_id == "globex")
        trends = pane.trends
        assert trends is not None
        assert len(trends.daily) == TREND_DAYS and trends.daily[-1][0] == NOW.date()
        assert sum(v for _, v in trends.daily) == trends.total
        assert sum(s.cost for s in trends.components) == trends.total
        assert trends.daily_pace == Decimal("3.225806452")  # $100 over 31 days, to the nano-dollar
        summary = str(app.query_one("#trends-summary", Static).render())
        assert "globex / render" in summary and "Warning" in summary and "Forecast to 2026-03-31" in summary
        chart = str(app.query_one("#trends-chart", Static).render())
        assert "pace 3.23/day" in chart and "Feb 19" in chart and "Mar 20" in chart
        console = Console(width=120, record=True)
        console.print(breakdown_table(trends))
        breakdown = console.export_text()
        for name in ("CPU", "Memory", "Payload", "Redis", "Network", "Base"):
            assert name in breakdown
        assert "Weekly pattern: Mon" in str(app.query_one("#trends-pattern", Static).render())
        # ] and [ step through the budgets
        pane.focus()
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: pane.trends is not None and pane.trends.budget.tenant_id != "globex")
        assert app.query_one("#trend-budget", Select).value == pane.budget_id


@pytest.mark.asyncio
async def test_new_spend_appears_within_a_second_without_a_keypress(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.query_one("#budgets-table", DataTable).row_count == 4)
        job = JobMetrics(
            job_id="late-1",
            tenant_id="acme",
            queue_name="default",
            cpu_time=Decimal(1_000_000),  # $100 at the default price
            memory_mb_seconds=Decimal(0),
            payload_bytes=Decimal(0),
            redis_ops=Decimal(0),
            network_bytes=Decimal(0),
            timestamp=NOW - timedelta(hours=1),
        )
        service.process_job_cost(job)
        table = app.query_one("#budgets-table", DataTable)
        await wait_until(pilot, lambda: "260.02" in _cells(table, 4) if table.row_count else False, timeout=2.0)


@pytest.mark.asyncio
async def test_a_failing_source_is_reported_and_the_ui_keeps_running(service: BudgetService) -> None:
    from jobbudget.domain.errors import StorageUnavailableError

    class Down(LocalSource):
        def dashboard(self, tenant_id: str | None = None):  # type: ignore[no-untyped-def]
            raise StorageUnavailableError("database is down")

    app = JobBudgetApp(Down(service), refresh_seconds=0)
    async with app.run_test(size=(100, 34)) as pilot:
        await wait_until(pilot, lambda: app.last_error is not None)
        assert "database is down" in (app.last_error or "")
        assert "(unreachable)" in app.sub_title
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "trends"


def test_chart_draws_pace_and_forecast_band() -> None:
    service = build_service()
    try:
        trends = service.budget_trends(next(b.id for b in service.list_budgets() if b.tenant_id == "acme") or "")
    finally:
        service.close()
    assert trends.forecast is not None
    text = daily_chart(trends.daily, pace=trends.daily_pace, forecast=trends.forecast, width=200).plain
    assert "╌" in text  # the pace line
    assert "▒" in text or "┆" in text  # days still to come, with their band
    no_forecast = daily_chart(trends.daily, pace=None, forecast=None).plain
    assert "╌" not in no_forecast and "▒" not in no_forecast
    flat = replace(trends, daily=tuple((d, Decimal(0)) for d, _ in trends.daily))
    assert daily_chart(flat.daily, pace=None, forecast=None).plain.count("█") == 1  # the legend only


@pytest.mark.asyncio
async def test_jobs_written_by_another_process_show_up(tmp_path: object) -> None:
    """Two services on one SQLite file stand for a worker process and the TUI's own."""
    from pathlib import Path

    from jobbudget.config import Config
    from jobbudget.domain.budget import Budget
    from jobbudget.domain.periods import BudgetPeriod

    assert isinstance(tmp_path, Path)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    worker = BudgetService(Config(database_url=url, cost_model="seed"), clock=lambda: NOW)
    tui_side = BudgetService(Config(database_url=url, cost_model="seed"), clock=lambda: NOW)
    try:
        worker.create_budget(Budget(tenant_id="acme", amount=Decimal(10), period=BudgetPeriod("monthly")))
        app = JobBudgetApp(LocalSource(tui_side), refresh_seconds=0.2)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one("#budgets-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 1)
            assert _cells(table, 2) == ["OK"]
            worker.process_job_cost(
                JobMetrics(
                    job_id="w-1",
                    tenant_id="acme",
                    queue_name="q",
                    cpu_time=Decimal(100_000),  # $10: the whole budget
                    memory_mb_seconds=Decimal(0),
                    payload_bytes=Decimal(0),
                    redis_ops=Decimal(0),
                    network_bytes=Decimal(0),
                    timestamp=NOW - timedelta(minutes=5),
                )
            )
            await wait_until(pilot, lambda: _cells(table, 2) == ["Block"], timeout=3.0)
    finally:
        worker.close()
        tui_side.close()


@pytest.mark.asyncio
async def test_number_keys_switch_tabs_on_an_empty_database_too() -> None:
    """Found by a flaky test: with no budget to focus, the tenant filter took the focus
    at start and swallowed the number keys."""
    from jobbudget.config import Config
    from jobbudget.storage.memory import MemoryStore

    empty = BudgetService(Config(), clock=lambda: NOW, store=MemoryStore())
    try:
        app = JobBudgetApp(LocalSource(empty), refresh_seconds=0)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.data is not None)
            assert not isinstance(app.focused, Input)
            for key, tab in (("3", "controls"), ("1", "overview"), ("4", "alerts"), ("2", "trends")):
                await pilot.press(key)
                assert app.query_one(TabbedContent).active == tab
                assert not isinstance(app.focused, Input)
    finally:
        empty.close()
