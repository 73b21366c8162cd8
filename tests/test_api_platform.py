"""The HTTP API of platform budgets: the organisation tree, label budgets, refunds,
corrections and raises, on every store; what a tenant, a team and an anonymous
client may do and see."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from test_api_support import budget, error_of, job


def _tree(api: Any) -> None:
    for node, parent in (("acme", "research"), ("globex", "sales"), ("research", "uni"), ("sales", "uni")):
        answer = api.put(f"/v1/tree/{node}", json={"parent": parent})
        assert answer.status_code == 200, answer.text


def test_the_tree_is_set_by_admins_and_seen_by_subtree(api: Any) -> None:
    _tree(api)
    nodes = {(n["node"], n["parent"]) for n in api.get("/v1/tree").json()["nodes"]}
    assert ("acme", "research") in nodes and ("research", "uni") in nodes
    assert api.put("/v1/tree/acme", "acme", json={"parent": ""}).status_code == 403
    assert api.client.put("/v1/tree/acme", json={"parent": ""}).status_code == 401
    # a tenant key sees nothing above itself
    assert api.get("/v1/tree", "acme").json() == {"nodes": []}
    cycle = api.put("/v1/tree/uni", json={"parent": "acme"})
    assert cycle.status_code == 422 and error_of(cycle)["field"] == "parent"


def test_a_team_key_reads_its_tenants_and_no_others(api: Any) -> None:
    _tree(api)
    _, team = api.service.create_api_key(role="tenant", tenant_id="research", name="research lead")
    headers = {"Authorization": f"Bearer {team}"}
    mine = api.post("/v1/budgets", json=budget("acme", "50"))
    other = api.post("/v1/budgets", json=budget("globex", "50"))
    assert mine.status_code == 201 and other.status_code == 201
    assert api.client.get(f"/v1/budgets/{mine.json()['id']}", headers=headers).status_code == 200
    assert api.client.get(f"/v1/budgets/{other.json()['id']}", headers=headers).status_code == 404
    listed = api.client.get("/v1/budgets", params={"tenant": "acme"}, headers=headers).json()
    assert [b["tenant_id"] for b in listed] == ["acme"]
    assert api.client.get("/v1/budgets", params={"tenant": "globex"}, headers=headers).json() == []
    # a team may add a stricter budget for a tenant below it, never loosen the operator's
    stricter = api.client.post("/v1/budgets", json=budget("acme", "10"), headers=headers)
    assert stricter.status_code == 201 and stricter.json()["owner"] == "team"
    loosen = api.client.patch(f"/v1/budgets/{mine.json()['id']}", json={"amount": "1000"}, headers=headers)
    assert loosen.status_code == 403
    # the team's cap is one its tenant cannot lift; the tenant's own budgets are not the team's to change
    cap = stricter.json()["id"]
    assert api.patch(f"/v1/budgets/{cap}", "acme", json={"amount": "1000000"}).status_code == 403
    assert api.delete(f"/v1/budgets/{cap}", "acme").status_code == 403
    assert api.client.patch(f"/v1/budgets/{cap}", json={"amount": "5"}, headers=headers).status_code == 200
    own = api.post("/v1/budgets", "acme", json=budget("acme", "7"))
    assert own.status_code == 201 and own.json()["owner"] == "tenant"
    assert api.client.delete(f"/v1/budgets/{own.json()['id']}", headers=headers).status_code == 403
    # reading is not acting in the tenant's name: no jobs, no admissions for it
    assert api.client.post("/v1/jobs", json=job("t1", "acme"), headers=headers).status_code == 403
    assert api.client.post("/v1/admit", json={"tenant_id": "acme"}, headers=headers).status_code == 403
    # and the tenant's own key still sees only itself
    assert api.get(f"/v1/budgets/{other.json()['id']}", "acme").status_code == 404


def test_an_organisation_budget_answers_checks_of_its_tenants(api: Any) -> None:
    _tree(api)
    org = api.post("/v1/budgets", json=budget("uni", "0.000001")).json()
    assert api.post("/v1/jobs", json=job("j1")).status_code == 200
    check = api.post("/v1/check", json={"tenant_id": "globex"}).json()
    assert check["type"] == "block" and check["budget_id"] == org["id"]
    # a tenant learns that a budget above it blocks, and how full it is: not its id, amount or others' spend
    seen = api.post("/v1/check", "globex", json={"tenant_id": "globex"}).json()
    assert seen["type"] == "block" and seen["budget_id"] is None
    assert seen["current_spend"] is None and seen["budget_amount"] is None and "uni" not in seen["message"]
    assert seen["message"].startswith("a budget above globex") and float(seen["utilization"]) > 1
    admitted = api.post("/v1/admit", "globex", json={"tenant_id": "globex", "estimated_cost": "0"}).json()
    assert admitted["action"]["budget_id"] is None


def test_label_budgets_over_http(api: Any) -> None:
    llm = api.post("/v1/budgets", json=budget("acme", "0.000001", labels={"project": "llm"}))
    assert llm.status_code == 201 and llm.json()["labels"] == {"project": "llm"}
    assert api.post("/v1/jobs", json=job("j1", labels={"project": "llm"})).status_code == 200
    blocked = api.post("/v1/check", "acme", json={"tenant_id": "acme", "labels": {"project": "llm"}}).json()
    assert blocked["type"] == "block"
    assert api.post("/v1/check", "acme", json={"tenant_id": "acme"}).json()["type"] == "allow"
    bad = api.post("/v1/budgets", json=budget("acme", "1", labels={"bad key!": "x"}))
    assert bad.status_code == 422 and error_of(bad)["field"].startswith("labels")


def test_refunds_and_corrections_over_http(api: Any) -> None:
    made = api.post("/v1/budgets", json=budget("acme", "100")).json()
    cost = api.post("/v1/jobs", json=job("j1")).json()["jobs"][0]["total_cost"]
    assert api.post("/v1/jobs/acme/j1/refund", "acme", json={"reason": "mine"}).status_code == 403
    refund = api.post("/v1/jobs/acme/j1/refund", json={"reason": "node failure"})
    assert refund.status_code == 200, refund.text
    assert refund.json()["amount"] == "-" + cost and refund.json()["budget_ids"] == [made["id"]]
    again = api.post("/v1/jobs/acme/j1/refund", json={"reason": "node failure"})
    assert again.status_code == 409
    assert api.post("/v1/jobs/acme/nope/refund", json={"reason": "x"}).status_code == 404
    credit = api.post("/v1/adjustments", json={"tenant_id": "acme", "amount": "-2.50", "reason": "SLA credit"})
    assert credit.status_code == 200 and credit.json()["kind"] == "credit"
    bad = api.post("/v1/adjustments", json={"tenant_id": "acme", "amount": "0", "reason": "x"})
    assert bad.status_code == 422 and error_of(bad)["field"] == "amount"
    day = api.service.now().date()
    params = {"start": day.isoformat(), "end": day.isoformat()}
    mine = api.get("/v1/adjustments", "acme", params=params).json()
    assert {a["kind"] for a in mine} == {"refund", "credit"}
    assert api.get("/v1/adjustments", "globex", params=params).json() == []
    assert api.get("/v1/adjustments", "globex", params={**params, "tenant": "acme"}).status_code == 404
    status = api.get(f"/v1/budgets/{made['id']}/status").json()
    assert status["current_spend"].startswith("-2.5")


def test_raises_over_http(api: Any) -> None:
    made = api.post("/v1/budgets", json=budget("acme", "100")).json()
    until = (api.service.now() + timedelta(days=1)).isoformat()
    body = {"amount": "50", "expires_at": until, "approver": "cfo@example.com", "reason": "launch"}
    assert api.post(f"/v1/budgets/{made['id']}/raises", "acme", json=body).status_code == 403
    raised = api.post(f"/v1/budgets/{made['id']}/raises", json=body)
    assert raised.status_code == 200, raised.text
    status = api.get(f"/v1/budgets/{made['id']}/status").json()
    assert status["budget"]["amount"] == "100" and status["amount_in_force"] == "150" and status["raised"] == "50"
    listed = api.get(f"/v1/budgets/{made['id']}/raises", "acme").json()
    assert [r["approver"] for r in listed] == ["cfo@example.com"]
    assert api.get(f"/v1/budgets/{made['id']}/raises", "globex").status_code == 404
    past = api.post(f"/v1/budgets/{made['id']}/raises", json={**body, "expires_at": "2000-01-01T00:00:00Z"})
    assert past.status_code == 422 and error_of(past)["field"] == "expires_at"
