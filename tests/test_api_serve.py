"""``jobbudget serve`` and the app factory used by its worker processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from jobbudget.api.app import app_from_env
from jobbudget.service import BudgetService
from receivers import free_port

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


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_on_its_port(tmp_path: Path, workers: int) -> None:
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "from jobbudget.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    cmd += ["--database-url", f"sqlite:///{tmp_path / 'serve.db'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert r.json() == {"status": "ready"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/alerts", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
