"""The HTTP API over every backend: each endpoint's happy path, exact money, errors
as JSON with stable codes, the body limit, and hostile input that never gives a 500."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from jobbudget.domain.cost import CostCalculationEngine, JobMetrics
from test_api_support import Api, budget, error_of, job, make_api

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_health_and_readiness_need_no_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json() == {"status": "ready"}


def test_openapi_and_docs(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path in ("/v1/jobs", "/v1/check", "/v1/budgets", "/v1/budgets/{budget_id}", "/v1/budgets/{budget_id}/status"):
        assert path in spec["paths"]
    for path in ("/v1/forecast", "/v1/reports", "/v1/cost-model", "/v1/calibration", "/v1/alerts"):
        assert path in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert api.client.get("/docs").status_code == 200


def test_post_one_job_prices_it_exactly_and_is_idempotent(api: Api) -> None:
    raw = json.dumps(job("j1")).replace('"cpu_time": 10', '"cpu_time": 12.345678901234567890')
    r = api.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    out = r.json()
    metrics = JobMetrics(**{**job("j1"), "cpu_time": Decimal("12.345678901234567890")})
    expected = CostCalculationEngine(api.service.get_cost_model()).calculate_job_cost(metrics)
    assert out["jobs"][0]["total_cost"] == str(expected.total_cost)
    assert out["jobs"][0]["cost_breakdown"]["cpu_cost"] == str(expected.cost_breakdown.cpu_cost)
    assert out["inserted"] == 1 and out["duplicates"] == []
    assert out["total_cost"] == str(expected.total_cost)
    again = api.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"}).json()
    assert again["inserted"] == 0 and again["duplicates"] == ["j1"] and again["jobs"][0]["duplicate"] is True
    assert again["total_cost"] == "0"


def test_post_a_batch_sums_exactly(api: Api) -> None:
    jobs = [job(f"b{i}", cpu_time=Decimal("0.1")) for i in range(50)] + [job("b0")]
    r = api.post(
        "/v1/jobs",
        content=json.dumps({"jobs": jobs}, default=str).replace('"0.1"', "0.1"),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["inserted"] == 50 and out["duplicates"] == ["b0"]
    assert Decimal(out["total_cost"]) == sum(Decimal(j["total_cost"]) for j in out["jobs"][:50])


def test_batch_limit(api: Api) -> None:
    r = api.post("/v1/jobs", json={"jobs": [job(f"x{i}") for i in range(10_001)]})
    assert r.status_code == 422
    assert error_of(r)["field"].startswith("jobs")


def test_check_returns_the_enforcement_action(api: Api) -> None:
    assert api.post("/v1/budgets", json=budget(amount="0.02")).status_code == 201
    api.post("/v1/jobs", json=job("c1"))
    r = api.post("/v1/check", json={"tenant_id": "acme", "queue_name": "default", "priority": 5})
    assert r.status_code == 200, r.text
    action = r.json()
    assert action["type"] == "warn" and action["allowed"] is True
    assert action["budget_amount"] == "0.02" and Decimal(action["current_spend"]) > 0
    assert api.post("/v1/check", json={"tenant_id": "nobody"}).json()["type"] == "allow"


def test_budget_crud_and_status(api: Api) -> None:
    r = api.post("/v1/budgets", json=budget(amount=1500.25, queue_name="default"))
    assert r.status_code == 201, r.text
    created = r.json()
    bid = created["id"]
    assert created["amount"] == "1500.25" and created["period"]["start_date"] == "2024-01-01"
    assert api.get(f"/v1/budgets/{bid}").json()["id"] == bid
    assert [b["id"] for b in api.get("/v1/budgets").json()] == [bid]
    assert [b["id"] for b in api.get("/v1/budgets?tenant=acme").json()] == [bid]
    assert api.get("/v1/budgets?tenant=globex").json() == []
    r = api.patch(f"/v1/budgets/{bid}", json={"amount": "2000", "warning_threshold": 0.5})
    assert r.status_code == 200, r.text
    assert r.json()["amount"] == "2000" and r.json()["warning_threshold"] == "0.5"
    api.post("/v1/jobs", json=job("s1"))
    status = api.get(f"/v1/budgets/{bid}/status").json()
    assert status["budget"]["id"] == bid and Decimal(status["current_spend"]) > 0
    assert status["period_start"] == "2024-01-01" and status["action"]["type"] == "allow"
    r = api.delete(f"/v1/budgets/{bid}")
    assert r.status_code == 200 and r.json()["active"] is False
    assert api.get("/v1/budgets").json() == []
    assert len(api.get("/v1/budgets?include_inactive=true").json()) == 1


def test_budget_errors(api: Api) -> None:
    r = api.get("/v1/budgets/nope")
    assert r.status_code == 404 and error_of(r)["code"] == "BUDGET_NOT_FOUND"
    r = api.post("/v1/budgets", json=budget(amount=-5))
    assert r.status_code == 422 and error_of(r)["field"] == "amount"
    r = api.post("/v1/budgets", json=budget(colour="blue"))
    assert r.status_code == 422 and error_of(r)["field"] == "colour"
    bid = api.post("/v1/budgets", json=budget()).json()["id"]
    r = api.patch(f"/v1/budgets/{bid}", json={"tenant_id": "globex"})
    assert r.status_code == 409 and error_of(r)["code"] == "CONFLICT"
    for name in ("queue_name", "period", "amount"):
        r = api.patch(f"/v1/budgets/{bid}", json={name: None})
        assert r.status_code == 422 and error_of(r)["field"] == name
    r = api.patch(f"/v1/budgets/{bid}", json={"period": {"type": "weekly"}, "queue_name": "q1"})
    assert r.status_code == 200, r.text
    assert r.json()["period"]["type"] == "weekly" and r.json()["queue_name"] == "q1"


def test_secrets_are_redacted_in_every_budget_response(api: Api) -> None:
    secret_url = "https://hooks.example.com/T0/very-secret-token"
    channel = {"type": "webhook", "target": secret_url, "metadata": {"auth_header": "Bearer hunter2", "team": "ops"}}
    r = api.post("/v1/budgets", json=budget(notifications=[channel]))
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    responses = [
        r,
        api.get(f"/v1/budgets/{bid}"),
        api.get("/v1/budgets"),
        api.get(f"/v1/budgets/{bid}/status"),
        api.patch(f"/v1/budgets/{bid}", json={"amount": 7}),
        api.delete(f"/v1/budgets/{bid}"),
    ]
    for resp in responses:
        assert resp.status_code == 200 or resp.status_code == 201
        assert "very-secret-token" not in resp.text and "hunter2" not in resp.text, resp.text
    shown = api.get(f"/v1/budgets/{bid}").json()["notifications"][0]
    assert shown["metadata"] == {"auth_header": "***", "team": "ops"}
    # the stored budget still has the real secret
    assert api.service.get_budget(bid).notifications[0].target == secret_url


def test_forecast(api: Api) -> None:
    api.post("/v1/budgets", json=budget())
    api.post("/v1/jobs", json=job("f1"))
    r = api.get("/v1/forecast?tenant=acme")
    assert r.status_code == 200, r.text
    assert "predicted_spend" in r.json() and isinstance(r.json()["predicted_spend"], str)
    r = api.get("/v1/forecast?tenant=acme&queue=none")
    assert r.status_code == 404


def test_reports_in_every_format(api: Api) -> None:
    api.post("/v1/budgets", json=budget())
    api.post("/v1/jobs", json=job("r1"))
    r = api.get("/v1/reports?tenant=acme&period=2024-01")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
    assert r.json()["tenant_id"] == "acme"
    r = api.get("/v1/reports?tenant=acme&from=2024-01-01&to=2024-01-31&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    r = api.get("/v1/reports?tenant=acme", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "<html" in r.text
    r = api.get("/v1/reports?tenant=acme&period=2024-13")
    assert r.status_code == 422 and error_of(r)["field"] == "period"
    r = api.get("/v1/reports?tenant=acme&format=pdf")
    assert r.status_code == 422 and error_of(r)["field"] == "format"


def test_cost_model_get_and_put(api: Api) -> None:
    current = api.get("/v1/cost-model").json()
    model = dict(current["model"], cpu_time_weight="0.0002")
    r = api.put("/v1/cost-model", json=model)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == current["version"] + 1
    assert api.get("/v1/cost-model").json()["model"]["cpu_time_weight"] == "0.0002"
    r = api.put("/v1/cost-model", json={**model, "cpu_time_weight": "-1"})
    assert r.status_code == 422 and "cpu_time_weight" in error_of(r)["field"]


def _benchmarks(n: int = 25) -> list[dict[str, Any]]:
    return [
        {
            "actual_cost": str(Decimal("0.002") * (i + 1) + Decimal("0.001")),
            "cpu_time": 10 * (i + 1),
            "memory_mb_seconds": 0,
            "payload_bytes": 0,
            "redis_ops": 0,
            "network_bytes": 0,
            "timestamp": "2024-01-10T00:00:00Z",
        }
        for i in range(n)
    ]


def test_calibration_json_and_csv(api: Api) -> None:
    before = api.service.get_cost_model_version()
    r = api.post("/v1/calibration", json=_benchmarks())
    assert r.status_code == 200, r.text
    assert r.json()["applied"] is False and r.json()["cost_model_version"] == before
    rows = _benchmarks()
    csv = ",".join(rows[0]) + "\n" + "\n".join(",".join(str(v) for v in row.values()) for row in rows) + "\n"
    r = api.post("/v1/calibration?apply=true", content=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["applied"] is True and api.service.get_cost_model_version() == before + 1
    r = api.post("/v1/calibration", content="actual_cost\n1\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 422 and error_of(r)["field"] == "benchmarks"


def test_alerts_list_and_ack(api: Api) -> None:
    api.post("/v1/budgets", json=budget(amount="0.02"))
    api.post("/v1/jobs", json=job("a1"))
    alerts = api.get("/v1/alerts").json()
    assert alerts and alerts[0]["event"]["type"] == "warning"
    aid = alerts[0]["event"]["id"]
    r = api.post(f"/v1/alerts/{aid}/ack", json={"by": "ops"})
    assert r.status_code == 200, r.text
    assert api.get("/v1/alerts").json()[0]["acknowledged_by"] == "ops"
    assert api.get("/v1/alerts?active_only=true").json() == []
    assert api.post("/v1/alerts/nope/ack").status_code == 404
    assert api.post("/v1/alerts/%00/ack").status_code == 422
    assert api.post(f"/v1/alerts/{aid}/ack", json={"by": "nul\u0000"}).status_code == 422


def test_unknown_route_and_method_are_json_errors(api: Api) -> None:
    r = api.get("/v1/nothing")
    assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND"
    r = api.delete("/v1/jobs")
    assert r.status_code == 405 and error_of(r)["code"] == "METHOD_NOT_ALLOWED"


def test_body_limit_by_content_length_and_by_stream(service_factory: Any) -> None:
    small = make_api(service_factory(), max_body_bytes=1000)
    with small.client:
        r = small.post("/v1/jobs", content=b"{" + b" " * 2000 + b"}", headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and error_of(r)["code"] == "PAYLOAD_TOO_LARGE"

        def chunks() -> Any:
            for _ in range(10):
                yield b" " * 200

        r = small.post("/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and error_of(r)["code"] == "PAYLOAD_TOO_LARGE"
        r = small.post("/v1/calibration", content=chunks(), headers={"Content-Type": "text/csv"})
        assert r.status_code == 413
        assert small.post("/v1/jobs", json=job("ok")).status_code == 200


def test_a_full_batch_of_10000_jobs(api: Api) -> None:
    jobs = [job(f"big{i}", queue=f"q{i % 7}") for i in range(10_000)]
    r = api.post("/v1/jobs", json={"jobs": jobs})
    assert r.status_code == 200, r.text[:300]
    out = r.json()
    assert out["inserted"] == 10_000
    assert Decimal(out["total_cost"]) == sum(Decimal(j["total_cost"]) for j in out["jobs"])


def test_a_body_not_sent_as_json_gets_a_clear_415(api: Api) -> None:
    """``curl -d`` without ``-H 'Content-Type: application/json'`` sends a form type."""
    body = json.dumps({"tenant_id": "acme", "queue_name": "ml"})
    form = api.post("/v1/check", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415, form.text
    error = error_of(form)
    assert error["code"] == "UNSUPPORTED_MEDIA_TYPE" and "Content-Type: application/json" in error["message"]
    assert api.post("/v1/check", content=body).status_code == 415  # no Content-Type at all
    ok = {"Content-Type": "application/json; charset=utf-8"}
    assert api.post("/v1/check", content=body, headers=ok).status_code == 200
    broken = api.post("/v1/check", content="{oops", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and error_of(broken)["field"] is None
    assert error_of(broken)["message"].startswith("the request body is not valid JSON")
