"""SVG snapshots of every tab on the fixed data set (tests/tui/dataset.py), at the
smallest supported size (80×24) and a comfortable one (120×40).  Update them after
an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and
look at the SVGs before committing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from jobbudget.service import BudgetService
from jobbudget.tui.app import JobBudgetApp
from jobbudget.tui.source import LocalSource
from jobbudget.tui.trends import TrendsPane

from .dataset import build_service
from .support import wait_until


@pytest.fixture
def service() -> Iterator[BudgetService]:
    service = build_service()
    yield service
    service.close()


def _ready(tab: str) -> Callable[[Pilot[None]], Any]:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, JobBudgetApp)
        await wait_until(pilot, lambda: app.data is not None)
        await pilot.press(tab)
        if tab == "2":
            await wait_until(pilot, lambda: app.query_one(TrendsPane).trends is not None)
        await pilot.pause(0.2)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("tab", ["1", "2", "3", "4", "5"], ids=["overview", "trends", "controls", "alerts", "platform"])
def test_tab_snapshot(snap_compare: Any, service: BudgetService, tab: str, size: tuple[int, int]) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    assert snap_compare(app, terminal_size=size, run_before=_ready(tab))


def test_help_snapshot(snap_compare: Any, service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)

    async def run_before(pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: app.data is not None)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 34), run_before=run_before)


@pytest.mark.parametrize("tab", ["overview", "trends"])
def test_readme_screenshots_are_the_current_snapshots(tab: str) -> None:
    """docs/images/tui-*.svg (shown in the README) are copies of the snapshots: after
    ``--snapshot-update``, copy them again."""
    root = Path(__file__).resolve().parents[2]
    snapshot = Path(__file__).parent / "__snapshots__" / "test_snapshots" / f"test_tab_snapshot[{tab}-120x40].raw"
    assert (root / "docs" / "images" / f"tui-{tab}.svg").read_bytes() == snapshot.read_bytes()
