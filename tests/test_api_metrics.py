"""``/metrics`` on the HTTP API: a real service wired to Prometheus metrics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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


GAUGES = {
    "jobbudget_active_budgets",
    "jobbudget_forecast_accuracy_ratio",
    "jobbudget_cost_model_drift_ratio",
    "jobbudget_shared_state_available",
    "jobbudget_shared_state_drift_dollars",
}


def benchmarks(n: int = 25) -> list[dict[str, Any]]:
    """Jobs whose real cost is about twice what the default model charges."""
    return [
        {"actual_cost": str(Decimal("0.004") * (i + 1)), "cpu_time": 10 * (i + 1), "memory_mb_seconds": 0,
         "payload_bytes": 0, "redis_ops": 0, "network_bytes": 0, "timestamp": "2024-01-10T00:00:00Z"}
        for i in range(n)
    ]  # fmt: skip


def test_unknown_gauges_have_no_sample_and_drift_only_for_the_model_in_force(clock: FakeClock) -> None:
    exported = PrometheusMetrics()
    with BudgetService(Config(), clock=clock, store=MemoryStore(), metrics=exported) as service:
        key = service.create_api_key(role="admin", name="root")[1]
        client = TestClient(create_app(service, metrics=exported))
        auth = {"Authorization": f"Bearer {key}"}

        def scrape() -> dict[str, list[float]]:
            response = client.get("/metrics")
            assert response.status_code == 200
            families = text_string_to_metric_families(response.text)
            return {f.name: [s.value for s in f.samples] for f in families if f.name in GAUGES}

        # no forecast closed, no calibration, no Redis: declared at most, no sample
        assert scrape() == {
            "jobbudget_active_budgets": [0.0],
            "jobbudget_forecast_accuracy_ratio": [],
            "jobbudget_cost_model_drift_ratio": [],
        }
        measured = client.post("/v1/calibration", json=benchmarks(), headers=auth).json()
        drift = measured["report"]["drift"]
        assert measured["applied"] is False and drift < 0  # the default model undercharges these jobs
        assert scrape()["jobbudget_cost_model_drift_ratio"] == [drift]
        applied = client.post("/v1/calibration?apply=true", json=benchmarks(), headers=auth)
        assert applied.status_code == 200 and applied.json()["applied"] is True
        assert scrape()["jobbudget_cost_model_drift_ratio"] == []  # the model it measured is gone
        again = client.post("/v1/calibration", json=benchmarks(), headers=auth).json()
        assert scrape()["jobbudget_cost_model_drift_ratio"] == [again["report"]["drift"]]  # the new model, measured
        model = client.get("/v1/cost-model", headers=auth).json()["model"]
        changed = client.put("/v1/cost-model", json=dict(model, cpu_time_weight="0.0003"), headers=auth)
        assert changed.status_code == 200, changed.text
        assert scrape()["jobbudget_cost_model_drift_ratio"] == []  # changed since it was measured


def test_metrics_can_require_a_key_that_reads_every_tenant(clock: FakeClock) -> None:
    token = "metrics-" + "t" * 24
    config = Config(cost_model=SEED, metrics_require_key=True, metrics_token=token)
    exported = PrometheusMetrics()
    with BudgetService(config, clock=clock, store=MemoryStore(), metrics=exported) as service:
        keys = {
            "admin": service.create_api_key(role="admin")[1],
            "reporter": service.create_api_key(role="reporter")[1],
            "acme reporter": service.create_api_key(role="reporter", tenant_id="acme")[1],
            "acme": service.create_api_key(role="tenant", tenant_id="acme")[1],
        }
        client = TestClient(create_app(service, metrics=exported))

        def status(authorization: str | None) -> int:
            headers = {"Authorization": authorization} if authorization else {}
            return client.get("/metrics", headers=headers).status_code

        assert status(None) == status(f"Basic {token}") == status("Bearer ") == 401
        assert status("Bearer jb_nope_nope") == status(f"Bearer {token}x") == 401
        assert status(f"Bearer {keys['acme']}") == status(f"Bearer {keys['acme reporter']}") == 403
        assert status(f"Bearer {token}") == status(f"Bearer {keys['admin']}") == 200
        assert status(f"Bearer {keys['reporter']}") == 200
