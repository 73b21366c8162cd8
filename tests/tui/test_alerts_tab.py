"""The Alerts tab of the terminal UI, driven by Textual's Pilot over a real service on
a SQLite file: an alert fires, shows up, is acknowledged with ``a`` (through a worker,
never on the UI thread), leaves the active view and stays in the history (``h``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics, NotificationChannel
from jobbudget.config import Config
from jobbudget.service import BudgetService
from jobbudget.storage.sql.store import SqlStore
from jobbudget.tui.alerts import EMPTY_ACTIVE, EMPTY_HISTORY, AlertsPane
from jobbudget.tui.app import JobBudgetApp
from jobbudget.tui.source import LocalSource
from receivers import Receiver, http_receivers

from .support import wait_until

pytestmark = pytest.mark.asyncio
SECRET_PATH = "/in/s3cr3t-path-token"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receivers() as start:
        yield start()


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[BudgetService]:
    store = SqlStore(f"sqlite:///{tmp_path / 'tui.db'}")
    store.migrate()
    made = BudgetService(
        Config(cost_model={"cpu_time_weight": "0.0001", "base_job_weight": "0"}), clock=clock, store=store
    )
    yield made
    made.close()


def job(job_id: str, cost: str, *, tenant: str = "acme", queue: str = "q1") -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id=job_id, tenant_id=tenant, queue_name=queue, cpu_time=Decimal(cost) * 10_000,
                      memory_mb_seconds=zero, payload_bytes=zero, redis_ops=zero, network_bytes=zero)  # fmt: skip


def make_budget(url: str, *, tenant: str = "acme") -> Budget:
    hook = NotificationChannel(type="webhook", target=url, metadata={"secret": "k3y-for-signing"})
    return Budget(tenant_id=tenant, amount=Decimal(100), period=BudgetPeriod("monthly"), notifications=(hook,))


def table(app: JobBudgetApp) -> DataTable[Any]:
    return app.query_one("#alerts-table", DataTable)


def rows(app: JobBudgetApp) -> list[list[str]]:
    t = table(app)
    if not t.display:
        return []
    return [[str(cell) for cell in t.get_row_at(i)] for i in range(t.row_count)]


def delivery_rows(app: JobBudgetApp) -> list[list[str]]:
    t = app.query_one("#alerts-deliveries", DataTable)
    return [[str(cell) for cell in t.get_row_at(i)] for i in range(t.row_count)] if t.display else []


def static_text(app: JobBudgetApp, selector: str) -> str:
    content = app.query_one(selector, Static).content
    return content.plain if isinstance(content, Text) else str(content)


async def test_acknowledge_moves_an_alert_from_active_to_history(
    service: BudgetService, receiver: Receiver, clock: FakeClock
) -> None:
    service.create_budget(make_budget(receiver.url(SECRET_PATH)))
    service.process_job_costs([job("a", "80")])  # 80 %: a warning
    assert service.dispatch_notifications(timeout=10).sent == 1  # delivered to the receiver
    (alert,) = service.list_alerts()
    assert alert.event.type == "warning"
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0, actor="alice")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: len(rows(app)) == 1, what="the alert row")
        (row,) = rows(app)
        assert row[1:4] == ["acme", "(all)", "warning"]
        assert row[4] == "80.00/100.00" and row[5] == "80.0%" and row[6] == "active"
        cell = table(app).get_row_at(0)[3]
        assert isinstance(cell, Text) and "yellow" in str(cell.style)
        # the detail: the numbers and the delivery, with the target redacted
        await wait_until(pilot, lambda: bool(delivery_rows(app)), what="the delivery rows")
        detail = static_text(app, "#alerts-detail")
        assert "80.00 of 100.00 USD" in detail and "2024-01-01..2024-01-31" in detail
        ((channel, target, status, attempts, when, error),) = delivery_rows(app)
        assert (channel, status, attempts, error) == ("webhook", "sent", "1", "")
        assert when.startswith("sent ") and "127.0.0.1" in target
        assert "s3cr3t" not in target and "k3y" not in detail

        await pilot.press("a")
        await wait_until(pilot, lambda: not rows(app), what="the alert to leave the active view")
        (acked,) = service.list_alerts()
        assert acked.acknowledged_by == "alice" and acked.acknowledged_at == clock.now
        assert static_text(app, "#alerts-empty") == EMPTY_ACTIVE

        await pilot.press("h")
        await wait_until(pilot, lambda: len(rows(app)) == 1, what="the history row")
        assert rows(app)[0][6].startswith("alice ")
        await pilot.press("a")  # already acknowledged: nothing changes
        await pilot.pause(0.2)
        assert service.list_alerts()[0].acknowledged_by == "alice"
        await pilot.press("h")
        assert not rows(app)


async def test_empty_states_and_a_failed_delivery(service: BudgetService, clock: FakeClock) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: app.data is not None, what="the first poll")
        await pilot.pause()
        assert static_text(app, "#alerts-empty") == EMPTY_HISTORY
        await pilot.press("h")
        assert static_text(app, "#alerts-empty") == EMPTY_HISTORY
        await pilot.press("h")

        # an unreachable receiver: the delivery waits for its retry, with the error
        service.create_budget(make_budget("http://127.0.0.1:9/hook"))
        service.process_job_costs([job("a", "95")])  # warning and throttle
        service.dispatch_notifications(timeout=10)
        await pilot.press("r")
        await wait_until(pilot, lambda: len(rows(app)) == 2, what="two alerts")
        kinds = [row[3] for row in rows(app)]
        assert sorted(kinds) == ["throttle", "warning"]
        await wait_until(pilot, lambda: bool(delivery_rows(app)), what="the delivery rows")
        ((_, target, status, attempts, when, error),) = delivery_rows(app)
        assert target == "http://127.0.0.1:9/***"
        assert status in ("pending", "failed") and attempts == "1" and error
        if status == "pending":
            assert when.startswith("next ")


async def test_the_cursor_stays_on_its_alert_across_refreshes(service: BudgetService, clock: FakeClock) -> None:
    service.create_budget(make_budget("http://127.0.0.1:9/hook"))
    service.process_job_costs([job("a", "80")])
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: len(rows(app)) == 1, what="the warning")
        pane = app.query_one(AlertsPane)
        first = pane.selected()
        assert first is not None and first.event.type == "warning"
        clock.advance(minutes=5)
        service.process_job_costs([job("b", "15")])  # 95 %: a throttle, newer, on top
        await pilot.press("r")
        await wait_until(pilot, lambda: len(rows(app)) == 2, what="the throttle")
        assert rows(app)[0][3] == "throttle"
        selected = pane.selected()
        assert selected is not None and selected.event.id == first.event.id
        assert table(app).cursor_row == 1
        assert "warning" in static_text(app, "#alerts-detail")
