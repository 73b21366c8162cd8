"""The app factory used by the worker processes of ``jobbudget serve --workers``
(the command itself is tested end to end in ``tests/e2e``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobbudget.api.app import app_from_env
from jobbudget.service import BudgetService

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_app_from_env_builds_its_own_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    monkeypatch.setenv("JOBBUDGET_DATABASE_URL", url)
    monkeypatch.delenv("JOBBUDGET_CONFIG", raising=False)
    app = app_from_env()
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/v1/budgets").status_code == 401
        service = app.state.service
        assert isinstance(service, BudgetService)
        _, key = service.create_api_key(role="admin", name="t")
        assert client.get("/v1/budgets", headers={"Authorization": f"Bearer {key}"}).json() == []
    assert (tmp_path / "api.db").exists()
