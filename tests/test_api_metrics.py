"""``/metrics`` on the HTTP API: a real service wired to Prometheus metrics."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import SEED, FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, Config
from jobbudget.api.app import create_app
from jobbudget.metrics import PrometheusMetrics
from jobbudget.storage.memory import MemoryStore


def test_metrics_endpoint_exports_what_the_api_did(clock: FakeClock) -> None:
    exported = PrometheusMetrics()
    with BudgetService(Config(cost_model=SEED), clock=clock, store=MemoryStore(), metrics=exported) as service:
        key = service.create_api_key(role="admin", name="root")[1]
        service.create_budget(Budget(tenant_id="acme", amount=Decimal("0.001"), period=BudgetPeriod("monthly")))
        client = TestClient(create_app(service, metrics=exported))
        auth = {"Authorization": f"Bearer {key}"}
        job = {"job_id": "j1", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "memory_mb_seconds": 0,
               "payload_bytes": 0, "redis_ops": 0, "network_bytes": 0}  # fmt: skip
        assert client.post("/v1/jobs", json=job, headers=auth).status_code == 200
        for _ in range(2):
            check = client.post("/v1/check", json={"tenant_id": "acme", "queue_name": "q"}, headers=auth)
            assert check.status_code == 200 and check.json()["type"] == "block"
        response = client.get("/metrics")  # scraped without a key, like Prometheus does
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert values[("jobbudget_budget_checks_total", (("action", "block"),))] == 2
    assert values[("jobbudget_active_budgets", ())] == 1
    assert values[("jobbudget_spend_tracked_dollars_total", (("tenant", "acme"),))] == 0.0011


def test_metrics_off_when_the_app_has_none(clock: FakeClock) -> None:
    with BudgetService(Config(cost_model=SEED), clock=clock, store=MemoryStore()) as service:
        assert TestClient(create_app(service)).get("/metrics").status_code == 404
