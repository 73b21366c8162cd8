"""Authentication and tenant isolation over HTTP: 401 without a valid key, roles
(admin, tenant, reporter), 404 for another tenant's things on read, 403 on write."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jobbudget.domain.errors import StorageUnavailableError
from test_api_support import Api, budget, job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def seeded(api: Api) -> dict[str, str]:
    """A budget and an alert for each of acme and globex."""
    ids = {}
    for tenant in ("acme", "globex"):
        r = api.post("/v1/budgets", json=budget(tenant, amount="0.02"))
        assert r.status_code == 201, r.text
        ids[tenant] = r.json()["id"]
        assert api.post("/v1/jobs", json=job(f"seed-{tenant}", tenant)).status_code == 200
    for tenant in ("acme", "globex"):
        alerts = [a for a in api.get("/v1/alerts").json() if a["event"]["tenant_id"] == tenant]
        ids[f"{tenant}-alert"] = alerts[0]["event"]["id"]
    return ids


ROUTES = [
    ("GET", "/v1/budgets"),
    ("POST", "/v1/budgets"),
    ("GET", "/v1/budgets/x"),
    ("PATCH", "/v1/budgets/x"),
    ("DELETE", "/v1/budgets/x"),
    ("GET", "/v1/budgets/x/status"),
    ("POST", "/v1/jobs"),
    ("POST", "/v1/check"),
    ("GET", "/v1/forecast?tenant=acme"),
    ("GET", "/v1/reports?tenant=acme"),
    ("GET", "/v1/cost-model"),
    ("PUT", "/v1/cost-model"),
    ("POST", "/v1/calibration"),
    ("GET", "/v1/alerts"),
    ("POST", "/v1/alerts/x/ack"),
]
BAD_KEYS = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer not-a-key",
    "Bearer jb_AAAAAAAA_AAAAAAAAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "Bearer " + "x" * 10_000,
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("header", BAD_KEYS, ids=lambda h: repr(h)[:30])
def test_every_v1_route_needs_a_valid_key(api: Api, method: str, path: str, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = api.client.request(method, path, headers=headers, json={})
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "UNAUTHENTICATED"
    if header:
        assert header.split(" ", 1)[-1] not in r.text or len(header) < 12


def test_a_revoked_key_is_refused(api: Api) -> None:
    key, text = api.service.create_api_key(role="admin", name="temp")
    assert api.client.get("/v1/budgets", headers={"Authorization": f"Bearer {text}"}).status_code == 200
    api.service.revoke_api_key(key.id)
    r = api.client.get("/v1/budgets", headers={"Authorization": f"Bearer {text}"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"


def test_tenant_key_reads_and_writes_its_own_tenant(api: Api, seeded: dict[str, str]) -> None:
    assert [b["tenant_id"] for b in api.get("/v1/budgets", "acme").json()] == ["acme"]
    assert api.get("/v1/budgets?tenant=globex", "acme").json() == []
    assert api.get(f"/v1/budgets/{seeded['acme']}", "acme").status_code == 200
    assert api.get(f"/v1/budgets/{seeded['acme']}/status", "acme").status_code == 200
    own = api.post("/v1/budgets", "acme", json=budget("acme", queue_name="q2"))
    assert own.status_code == 201 and own.json()["owner"] == "tenant"
    assert api.patch(f"/v1/budgets/{own.json()['id']}", "acme", json={"amount": 5}).status_code == 200
    assert api.post("/v1/jobs", "acme", json=job("own", "acme")).status_code == 200
    assert api.post("/v1/check", "acme", json={"tenant_id": "acme"}).status_code == 200
    assert api.get("/v1/forecast?tenant=acme", "acme").status_code == 200
    assert api.get("/v1/reports?tenant=acme", "acme").status_code == 200
    alerts = api.get("/v1/alerts", "acme").json()
    assert alerts and {a["event"]["tenant_id"] for a in alerts} == {"acme"}
    assert api.get("/v1/alerts?tenant=globex", "acme").json() == []
    assert api.post(f"/v1/alerts/{seeded['acme-alert']}/ack", "acme").status_code == 200
    assert api.get("/v1/cost-model", "acme").status_code == 200
    assert api.delete(f"/v1/budgets/{own.json()['id']}", "acme").status_code == 200


def test_a_tenant_key_cannot_loosen_or_remove_the_operators_budget(api: Api, seeded: dict[str, str]) -> None:
    """The operator's budget (made with an admin key) is a cap: the tenant's own key can
    neither raise it, make it warn-only, nor deactivate it; it may add a stricter one."""
    capped = seeded["acme"]
    assert api.get(f"/v1/budgets/{capped}", "acme").json()["owner"] == "operator"
    before = api.post("/v1/check", "acme", json={"tenant_id": "acme"}).json()
    assert before["type"] == "warn"
    for attempt in (
        api.patch(f"/v1/budgets/{capped}", "acme", json={"amount": 1_000_000_000}),
        api.patch(f"/v1/budgets/{capped}", "acme", json={"enforcement_policy": {"warn_only": True}}),
        api.patch(f"/v1/budgets/{capped}", "acme", json={"block_threshold": 10}),
        api.patch(f"/v1/budgets/{capped}", "acme", json={"active": False}),
        api.delete(f"/v1/budgets/{capped}", "acme"),
    ):
        assert attempt.status_code == 403, attempt.text
        assert "set by the operator" in attempt.json()["error"]["message"]
    kept = api.service.get_budget(capped)
    assert kept.active and kept.amount == Decimal("0.02") and not kept.enforcement_policy.warn_only
    assert api.post("/v1/check", "acme", json={"tenant_id": "acme"}).json() == before
    stricter = api.post("/v1/budgets", "acme", json=budget("acme", amount="0.01"))
    assert stricter.status_code == 201 and stricter.json()["owner"] == "tenant"
    # an admin key still manages it
    assert api.patch(f"/v1/budgets/{capped}", json={"amount": 5}).status_code == 200


def _not_found(r: Any) -> None:
    assert r.status_code == 404, (r.status_code, r.text)
    assert r.json()["error"]["code"].endswith("NOT_FOUND")


def test_another_tenants_things_are_not_found_on_read(api: Api, seeded: dict[str, str]) -> None:
    other = seeded["globex"]
    _not_found(api.get(f"/v1/budgets/{other}", "acme"))
    _not_found(api.get(f"/v1/budgets/{other}/status", "acme"))
    _not_found(api.get("/v1/forecast?tenant=globex", "acme"))
    _not_found(api.get("/v1/reports?tenant=globex", "acme"))
    _not_found(api.post("/v1/check", "acme", json={"tenant_id": "globex"}))
    # the same answer as for a budget that does not exist
    missing = api.get("/v1/budgets/does-not-exist", "acme").json()["error"]
    assert api.get(f"/v1/budgets/{other}", "acme").json()["error"]["code"] == missing["code"]


def test_another_tenants_things_cannot_be_written(api: Api, seeded: dict[str, str]) -> None:
    other = seeded["globex"]
    r = api.post("/v1/jobs", "acme", json=job("x", "globex"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    r = api.post("/v1/jobs", "acme", json={"jobs": [job("y", "acme"), job("z", "globex")]})
    assert r.status_code == 403
    assert api.service.get_job_cost("acme", "y") is None  # nothing of the batch was stored
    assert api.post("/v1/budgets", "acme", json=budget("globex")).status_code == 403
    # an existing budget of another tenant is not even revealed
    _not_found(api.patch(f"/v1/budgets/{other}", "acme", json={"amount": 1}))
    _not_found(api.delete(f"/v1/budgets/{other}", "acme"))
    _not_found(api.post(f"/v1/alerts/{seeded['globex-alert']}/ack", "acme"))
    kept = api.service.get_budget(other)
    assert kept.active and kept.amount == Decimal("0.02")
    # moving one's own budget to another tenant is a conflict
    own = api.post("/v1/budgets", "acme", json=budget("acme", queue_name="mine")).json()["id"]
    r = api.patch(f"/v1/budgets/{own}", "acme", json={"tenant_id": "globex"})
    assert r.status_code == 409


def test_reporter_reads_everything_and_writes_nothing(api: Api, seeded: dict[str, str]) -> None:
    assert {b["tenant_id"] for b in api.get("/v1/budgets", "reporter").json()} == {"acme", "globex"}
    assert api.get(f"/v1/budgets/{seeded['globex']}/status", "reporter").status_code == 200
    assert api.get("/v1/reports?tenant=globex&format=csv", "reporter").status_code == 200
    assert api.get("/v1/forecast?tenant=acme", "reporter").status_code == 200
    assert len(api.get("/v1/alerts", "reporter").json()) >= 2
    for r in (
        api.post("/v1/jobs", "reporter", json=job("r", "acme")),
        api.post("/v1/budgets", "reporter", json=budget("acme")),
        api.patch(f"/v1/budgets/{seeded['acme']}", "reporter", json={"amount": 1}),
        api.delete(f"/v1/budgets/{seeded['acme']}", "reporter"),
        api.post(f"/v1/alerts/{seeded['acme-alert']}/ack", "reporter"),
        api.put("/v1/cost-model", "reporter", json=api.get("/v1/cost-model").json()["model"]),
        api.post("/v1/calibration?apply=true", "reporter", json=[]),
    ):
        assert r.status_code == 403, (r.status_code, r.text)
        assert r.json()["error"]["code"] == "FORBIDDEN"


def test_tenant_bound_reporter_sees_only_its_tenant(api: Api, seeded: dict[str, str]) -> None:
    assert {b["tenant_id"] for b in api.get("/v1/budgets", "acme-reporter").json()} == {"acme"}
    _not_found(api.get(f"/v1/budgets/{seeded['globex']}", "acme-reporter"))
    _not_found(api.get("/v1/reports?tenant=globex", "acme-reporter"))
    assert api.get("/v1/reports?tenant=acme", "acme-reporter").status_code == 200
    assert api.post("/v1/jobs", "acme-reporter", json=job("r", "acme")).status_code == 403


def test_cost_model_and_calibration_apply_are_admin_only(api: Api) -> None:
    model = api.get("/v1/cost-model").json()["model"]
    assert api.put("/v1/cost-model", "acme", json=model).status_code == 403
    assert api.post("/v1/calibration?apply=true", "acme", json=[]).status_code == 403
    assert api.post("/v1/calibration", "acme", json=[]).status_code == 403
    assert api.put("/v1/cost-model", "admin", json=model).status_code == 200


def test_admin_reads_and_writes_every_tenant(api: Api, seeded: dict[str, str]) -> None:
    assert {b["tenant_id"] for b in api.get("/v1/budgets").json()} == {"acme", "globex"}
    assert api.post("/v1/jobs", json={"jobs": [job("m1", "acme"), job("m2", "globex")]}).status_code == 200
    assert api.patch(f"/v1/budgets/{seeded['globex']}", json={"amount": 3}).json()["amount"] == "3"
    assert api.post(f"/v1/alerts/{seeded['globex-alert']}/ack").status_code == 200


def test_storage_outage_is_503_with_retry_after(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailableError("connection refused")

    monkeypatch.setattr(api.service, "ping", down)
    r = api.client.get("/readyz")
    assert r.status_code == 503 and r.headers["Retry-After"]
    monkeypatch.setattr(api.service, "list_budgets", down)
    r = api.get("/v1/budgets")
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert r.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert "connection refused" not in r.text


def test_a_bug_is_a_500_without_details(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.service, "list_budgets", broken)
    r = api.get("/v1/budgets")
    assert r.status_code == 500 and r.json()["error"]["code"] == "INTERNAL"
    assert "secret internals" not in r.text
