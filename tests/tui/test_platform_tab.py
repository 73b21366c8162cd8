"""The Platform tab of the terminal UI, driven by Textual's Pilot over a real service
on a SQLite file: the organisation tree, a refund and a credit through the form (each
audited, a refund once), errors next to the field, and the same tab over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Tree

from conftest import FakeClock
from jobbudget.config import Config
from jobbudget.domain.cost import JobMetrics
from jobbudget.service import BudgetService
from jobbudget.tui.app import JobBudgetApp
from jobbudget.tui.platform import PlatformPane
from jobbudget.tui.source import LocalSource

from .support import wait_until


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[BudgetService]:
    made = BudgetService(
        Config(database_url=f"sqlite:///{tmp_path}/t.db", cost_model={"cpu_time_weight": "0.0001"}), clock=clock
    )
    made.set_parent("acme", "research")
    made.set_parent("research", "uni")
    made.process_job_cost(
        JobMetrics("j1", "acme", "gpu", Decimal(10_000), Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    )
    yield made
    made.close()


async def open_platform(pilot: Pilot[None]) -> PlatformPane:
    app = pilot.app
    assert isinstance(app, JobBudgetApp)
    await wait_until(pilot, lambda: app.data is not None, what="the first poll")
    await pilot.press("5")
    return app.query_one(PlatformPane)


def error_of(pane: PlatformPane, key: str) -> str:
    label = pane.query_one(f"#perr-{key}", Label)
    return str(label.content) if label.display else ""


@pytest.mark.asyncio
async def test_the_tree_a_refund_and_a_credit(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_platform(pilot)
        tree = pane.query_one("#org-tree", Tree)
        labels = [str(node.label) for node in tree.root.children]
        assert labels == ["uni"]
        assert [str(n.label) for n in tree.root.children[0].children] == ["research"]
        pane.query_one("#p-tenant_id", Input).value = "acme"
        pane.query_one("#p-job_id", Input).value = "j1"
        pane.query_one("#p-reason", Input).value = "node n12 failed"
        pane.action_refund()
        table = pane.query_one("#adj-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the refund in the table")
        assert service.list_audit(kind="refund")[0].actor == "tui"
        pane.action_refund()  # once: nothing more
        await pilot.pause(0.3)
        assert len(service.list_adjustments(start=service.now().date(), end=service.now().date())) == 1
        pane.query_one("#p-amount", Input).value = "12,5"
        pane.action_adjust()
        await wait_until(pilot, lambda: bool(error_of(pane, "amount")), what="the amount's error")
        assert "must be a number" in error_of(pane, "amount")
        pane.query_one("#p-amount", Input).value = "-2.50"
        pane.action_adjust()
        await wait_until(pilot, lambda: table.row_count == 2, what="the credit in the table")
        assert not error_of(pane, "amount")
        pane.query_one("#p-tenant_id", Input).value = "acme"
        pane.query_one("#p-amount", Input).value = "0"
        pane.action_adjust()
        await wait_until(pilot, lambda: bool(error_of(pane, "amount")), what="0 refused by the service")


@pytest.mark.asyncio
async def test_an_empty_tree_says_how_to_make_one(tmp_path: Path, clock: FakeClock) -> None:
    service = BudgetService(Config(database_url=f"sqlite:///{tmp_path}/e.db"), clock=clock)
    try:
        app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
        async with app.run_test(size=(100, 30)) as pilot:
            pane = await open_platform(pilot)
            await wait_until(pilot, lambda: pane.view is not None, what="the view")
            tree = pane.query_one("#org-tree", Tree)
            assert "jobbudget tree set" in str(tree.root.children[0].label)
            pane.action_refund()
            await wait_until(pilot, lambda: bool(error_of(pane, "tenant_id")), what="the tenant's error")
    finally:
        service.close()
