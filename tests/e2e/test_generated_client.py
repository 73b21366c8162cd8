"""The schema the server publishes is valid OpenAPI, and a client generated from it by
``openapi-python-client`` works against the real server: successes and errors
(401, 404, 422) come back as the generated, typed models."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from openapi_spec_validator import validate

from .server import LiveServer

PACKAGE = "jobbudget_generated_client"
#: The generator speaks JSON, forms and files; CSV calibration bodies go as a file.
GENERATOR_CONFIG = {"content_type_overrides": {"text/csv": "application/octet-stream"}, "post_hooks": []}


def _generator() -> str:
    """The generator, from its own venv beside the project's (``make test`` builds it:
    it needs typer<0.28, the project is tested with the newest typer)."""
    folders = [Path(sys.prefix) / "openapi-client" / "bin", Path(sys.prefix) / "bin"]
    found = shutil.which("openapi-python-client", path=os.pathsep.join(str(f) for f in folders))
    assert found, "openapi-python-client is not installed: run 'make test' (it builds .venv/openapi-client)"
    return found


@pytest.fixture(scope="module")
def spec(live_server: LiveServer) -> dict[str, Any]:
    served: dict[str, Any] = httpx.get(f"{live_server.url}/openapi.json").json()
    return served


@pytest.fixture(scope="module")
def client_package(spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client generated from the served schema, importable as ``PACKAGE``."""
    work = tmp_path_factory.mktemp("generated")
    (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    (work / "config.yaml").write_text(yaml.safe_dump(GENERATOR_CONFIG), encoding="utf-8")
    command = [_generator(), "generate", "--path", "spec.json", "--output-path", PACKAGE, "--meta", "none"]
    done = subprocess.run([*command, "--config", "config.yaml"], cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr  # every operation made
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_served_schema_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)  # raises with the path of the first violation
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_successes_parse_as_typed_models(client_package: ModuleType, live_server: LiveServer) -> None:
    models = _module("models")
    client = _module("client").AuthenticatedClient(base_url=live_server.url, token=live_server.admin_key)
    create = _module("api.budgets.create_budget_v1_budgets_post")
    created = create.sync_detailed(client=client, body=models.BudgetIn(tenant_id="gen-acme", amount="250.50"))
    assert created.status_code == HTTPStatus.CREATED
    assert isinstance(created.parsed, models.BudgetOut) and Decimal(created.parsed.amount) == Decimal("250.50")
    check = _module("api.enforcement.post_check_v1_check_post")
    answer = check.sync_detailed(client=client, body=models.CheckIn(tenant_id="gen-acme", queue_name="ml"))
    assert answer.status_code == HTTPStatus.OK
    assert isinstance(answer.parsed, models.ActionOut) and answer.parsed.type_ == "allow"
    jobs = _module("api.jobs.post_jobs_v1_jobs_post")
    batch = models.JobBatchIn(jobs=[models.JobIn(job_id="g1", tenant_id="gen-acme", queue_name="ml", cpu_time=100)])
    stored = jobs.sync_detailed(client=client, body=batch)
    assert stored.status_code == HTTPStatus.OK and isinstance(stored.parsed, models.JobsOut)
    assert stored.parsed.inserted == 1 and stored.parsed.jobs[0].total_cost == stored.parsed.total_cost


def test_errors_parse_as_the_error_model(client_package: ModuleType, live_server: LiveServer) -> None:
    models = _module("models")
    clients = _module("client")
    admin = clients.AuthenticatedClient(base_url=live_server.url, token=live_server.admin_key)
    stranger = clients.AuthenticatedClient(base_url=live_server.url, token="jb_nope_nope")
    list_budgets = _module("api.budgets.list_budgets_v1_budgets_get")
    get_budget = _module("api.budgets.get_budget_v1_budgets_budget_id_get")
    list_alerts = _module("api.alerts.list_alerts_v1_alerts_get")
    create = _module("api.budgets.create_budget_v1_budgets_post")

    refused = list_budgets.sync_detailed(client=stranger)
    missing = get_budget.sync_detailed("no-such-budget", client=admin)
    bad_query = list_alerts.sync_detailed(client=admin, limit=0)
    bad_body = create.sync_detailed(client=admin, body=models.BudgetIn(tenant_id="gen-acme", amount="-5"))

    expected = [
        (refused, HTTPStatus.UNAUTHORIZED, "UNAUTHENTICATED", None),
        (missing, HTTPStatus.NOT_FOUND, "BUDGET_NOT_FOUND", None),
        (bad_query, HTTPStatus.UNPROCESSABLE_ENTITY, "VALIDATION_FAILED", "limit"),
        (bad_body, HTTPStatus.UNPROCESSABLE_ENTITY, "VALIDATION_FAILED", "amount"),
    ]
    for response, status, code, field in expected:
        assert response.status_code == status, response.content
        assert isinstance(response.parsed, models.ErrorOut), response.content
        assert isinstance(response.parsed.error, models.ErrorDetail)
        assert (response.parsed.error.code, response.parsed.error.field) == (code, field), response.content
        assert response.parsed.error.message


def test_platform_operations_through_the_generated_client(client_package: ModuleType, live_server: LiveServer) -> None:
    models = _module("models")
    client = _module("client").AuthenticatedClient(base_url=live_server.url, token=live_server.admin_key)
    put_node = _module("api.organisation.put_tree_node_v1_tree_node_put")
    placed = put_node.sync_detailed("gen-gpu", client=client, body=models.ParentIn(parent="gen-team"))
    assert placed.status_code == HTTPStatus.OK and isinstance(placed.parsed, models.TreeOut)
    create = _module("api.budgets.create_budget_v1_budgets_post")
    team = create.sync_detailed(client=client, body=models.BudgetIn(tenant_id="gen-team", amount="100"))
    assert team.status_code == HTTPStatus.CREATED
    jobs = _module("api.jobs.post_jobs_v1_jobs_post")
    stored = jobs.sync_detailed(
        client=client, body=models.JobIn(job_id="gpu-1", tenant_id="gen-gpu", queue_name="ml", cpu_time=50)
    )
    assert stored.status_code == HTTPStatus.OK
    refund = _module("api.corrections.refund_job_v1_jobs_tenant_id_job_id_refund_post")
    done = refund.sync_detailed("gen-gpu", "gpu-1", client=client, body=models.RefundIn(reason="node failure"))
    assert done.status_code == HTTPStatus.OK and isinstance(done.parsed, models.AdjustmentOut)
    again = refund.sync_detailed("gen-gpu", "gpu-1", client=client, body=models.RefundIn(reason="again"))
    assert again.status_code == HTTPStatus.CONFLICT and isinstance(again.parsed, models.ErrorOut)
    raise_ = _module("api.budgets.post_raise_v1_budgets_budget_id_raises_post")
    assert isinstance(team.parsed, models.BudgetOut)
    body = models.RaiseIn.from_dict(
        {"amount": "50", "expires_at": "2030-01-01T00:00:00Z", "approver": "cfo@example.com", "reason": "launch"}
    )
    raised = raise_.sync_detailed(str(team.parsed.id), client=client, body=body)
    assert raised.status_code == HTTPStatus.OK and isinstance(raised.parsed, models.RaiseOut)
    check = _module("api.enforcement.post_check_v1_check_post")
    answer = check.sync_detailed(client=client, body=models.CheckIn(tenant_id="gen-gpu", queue_name="ml"))
    assert isinstance(answer.parsed, models.ActionOut) and answer.parsed.budget_id == team.parsed.id
    assert Decimal(answer.parsed.budget_amount) == 150 and Decimal(answer.parsed.current_spend) == 0
