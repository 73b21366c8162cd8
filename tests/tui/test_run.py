"""``jobbudget.tui.run``: the UI on a service of this process (the design's StartTUI;
the service itself knows nothing of the UI)."""

from __future__ import annotations

from typing import Any

import pytest

import jobbudget.tui
from jobbudget.config import Config
from jobbudget.service import BudgetService
from jobbudget.tui.app import JobBudgetApp
from jobbudget.tui.source import LocalSource


def test_run_opens_the_app_on_the_service_and_leaves_it_open(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[JobBudgetApp] = []

    def fake_run(self: JobBudgetApp, *args: Any, **kwargs: Any) -> None:
        ran.append(self)

    monkeypatch.setattr(JobBudgetApp, "run", fake_run)
    with BudgetService(Config(database_url="memory://")) as service:
        jobbudget.tui.run(service, tenant_id="acme", refresh_seconds=2.5)
        [app] = ran
        assert isinstance(app.source, LocalSource) and app.source.service is service
        assert (app.tenant_id, app.refresh_seconds) == ("acme", 2.5)
        assert service.list_budgets() == []  # still open
    assert not hasattr(BudgetService, "start_tui")
