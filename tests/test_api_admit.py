"""``POST /v1/admit``, ``DELETE /v1/reservations/{id}`` and ``reservation_id`` on
``POST /v1/jobs``: admissions over HTTP that never overshoot a blocking budget."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jobbudget import Budget, BudgetPeriod
from test_api_support import Api, error_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def api_config() -> dict[str, Any]:
    return {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}


def _job(job_id: str, rid: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"job_id": job_id, "tenant_id": "acme", "queue_name": "q", "cpu_time": 10_000}  # $1
    if rid is not None:
        body["reservation_id"] = rid
    return body


def test_admit_holds_the_estimate_until_the_job_is_reported(api: Api) -> None:
    api.service.create_budget(Budget(tenant_id="acme", amount=Decimal(2), period=BudgetPeriod("monthly")))
    first = api.post("/v1/admit", "acme", json={"tenant_id": "acme", "queue_name": "q", "estimated_cost": "1"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["allowed"] and body["reservation_id"] and body["estimated_cost"] == "1"
    second = api.post("/v1/admit", "acme", json={"tenant_id": "acme", "queue_name": "q", "estimated_cost": "1"}).json()
    third = api.post("/v1/admit", "acme", json={"tenant_id": "acme", "queue_name": "q", "estimated_cost": "1"}).json()
    assert second["allowed"] and not third["allowed"] and third["reservation_id"] is None
    assert third["action"]["type"] == "block"
    released = api.delete(f"/v1/reservations/{second['reservation_id']}", "acme")
    assert released.status_code == 200 and released.json() == {"released": True}
    assert api.delete(f"/v1/reservations/{second['reservation_id']}", "acme").json() == {"released": False}
    stored = api.post("/v1/jobs", "acme", json={"jobs": [_job("j1", body["reservation_id"])]})
    assert stored.status_code == 200, stored.text
    assert api.service.open_reservations() == 0
    assert api.service.check_budget_compliance("acme", "q").current_spend == Decimal(1)


def test_admit_checks_keys_and_input(api: Api) -> None:
    api.service.create_budget(Budget(tenant_id="acme", amount=Decimal(2), period=BudgetPeriod("monthly")))
    other = api.post("/v1/admit", "globex", json={"tenant_id": "acme", "queue_name": "q"})
    assert other.status_code in (403, 404)
    reporter = api.post("/v1/admit", "reporter", json={"tenant_id": "acme", "queue_name": "q"})
    assert reporter.status_code == 403
    assert api.delete("/v1/reservations/abc", "reporter").status_code == 403
    for bad, field in (
        ({"estimated_cost": "-1"}, "estimated_cost"),
        ({"estimated_cost": "NaN"}, "estimated_cost"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"priority": 11}, "priority"),
    ):
        response = api.post("/v1/admit", "acme", json={"tenant_id": "acme", "queue_name": "q", **bad})
        assert response.status_code == 422, (bad, response.text)
        assert error_of(response)["field"] == field
    assert api.delete("/v1/reservations/not-a-valid-id!", "acme").status_code == 422
    assert api.service.open_reservations() == 0


def test_a_tenant_key_cannot_release_another_tenants_reservation(api: Api) -> None:
    api.service.create_budget(Budget(tenant_id="acme", amount=Decimal(2), period=BudgetPeriod("monthly")))
    held = api.post("/v1/admit", "acme", json={"tenant_id": "acme", "queue_name": "q", "estimated_cost": "2"}).json()
    rid = held["reservation_id"]
    assert api.delete(f"/v1/reservations/{rid}", "globex").json() == {"released": False}
    assert not api.post("/v1/admit", "acme", json={"tenant_id": "acme", "estimated_cost": "1"}).json()["allowed"]
    assert api.delete(f"/v1/reservations/{rid}", "acme").json() == {"released": True}
