"""Reports of platforms: a team's report rolls its tenants up, cost by named
resource (GPUs), and refunds and corrections shown apart from the jobs, in every
format, with every tenant-supplied string escaped."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from jobbudget.domain.budget import Budget
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.render import render

D = Decimal
MODEL = {"cpu_time_weight": "0.0001", "base_job_weight": "0", "resources": {"gpu": "0.001", "gpu:h100": "0.002"}}


def job(job_id: str, tenant: str, *, gpu: dict[str, int] | None = None, **extra: Any) -> JobMetrics:
    return JobMetrics(
        job_id=job_id, tenant_id=tenant, queue_name="train", cpu_time=D(10_000), memory_mb_seconds=D(0),
        payload_bytes=D(0), redis_ops=D(0), network_bytes=D(0), resources=gpu or {}, **extra,
    )  # fmt: skip


@pytest.fixture
def service(service_factory: Callable[..., Any]) -> Any:
    service = service_factory(cost_model=MODEL)
    service.set_parent("acme", "research")
    service.set_parent("beta", "research")
    service.create_budget(Budget(tenant_id="research", amount=D(100), period=BudgetPeriod(type="monthly")))
    service.process_job_costs([
        job("a1", "acme", gpu={"gpu:a100": 1000}), job("a2", "acme", gpu={"gpu:h100": 500}),
        job("b1", "beta"), job("b2", "beta", gpu={"gpu:a100": 3000}),
    ])  # fmt: skip
    service.refund_job("beta", "b2", reason="<script>alert(1)</script> node failure")
    return service


def test_a_team_report_rolls_up_its_tenants_with_resources_and_refunds(service: Any) -> None:
    report = service.generate_report("research", BudgetPeriod(type="monthly"))
    # jobs: 4 × $1 CPU + GPUs 1000 × 0.001 + 500 × 0.002 + 3000 × 0.001 = 4 + 1 + 1 + 3
    assert report.total_spend == 9 and report.total_jobs == 4
    assert {m.tenant_id: m.total_cost for m in report.members} == {"beta": 5, "acme": 4}
    assert [(r.name, r.quantity, r.cost) for r in report.resources] == [
        ("gpu:a100", 4000, 4), ("gpu:h100", 500, 1),
    ]  # fmt: skip
    assert sum(r.cost for r in report.resources) == report.component_breakdown.resource_cost
    assert [a.amount for a in report.adjustments] == [-4] and report.net_spend == 5
    assert {d.queue_name for d in report.top_drivers} == {"acme/train", "beta/train"}
    tenant = service.generate_report("acme", BudgetPeriod(type="monthly"))
    assert tenant.members == () and tenant.adjustments == () and tenant.total_spend == 4


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json", "csv"])
def test_every_format_shows_them_and_escapes(service: Any, fmt: str) -> None:
    report = service.generate_report("research", BudgetPeriod(type="monthly"))
    out = render(report, fmt=fmt, width=160)
    if fmt == "json":
        data = json.loads(out)
        assert data["resources"][0]["name"] == "gpu:a100" and data["adjustments"][0]["amount"] == "-4.000000000"
        return
    if fmt == "csv":
        assert "resource_cost" in out.splitlines()[0]
        return
    assert "gpu:a100" in out and "Adjustments" in out and "net spend 5.00" in out
    assert "<script>" not in out or fmt == "text"
    if fmt == "html":
        assert "&lt;script&gt;" in out


def test_reports_over_http_follow_the_tree(api: Any) -> None:
    api.service.set_parent("acme", "research")
    api.post("/v1/jobs", json={"job_id": "j1", "tenant_id": "acme", "queue_name": "q", "cpu_time": 10})
    _, team = api.service.create_api_key(role="tenant", tenant_id="research", name="lead")
    got = api.client.get("/v1/reports", params={"tenant": "research"}, headers={"Authorization": f"Bearer {team}"})
    assert got.status_code == 200, got.text
    assert [m["tenant_id"] for m in got.json()["members"]] == ["acme"]
    mine = api.client.get("/v1/reports", params={"tenant": "acme"}, headers={"Authorization": f"Bearer {team}"})
    assert mine.status_code == 200
    assert api.get("/v1/reports", "acme", params={"tenant": "research"}).status_code == 404
    assert datetime.now(UTC).year >= 2024


def test_trends_of_a_team_budget_show_its_tenants_and_each_resource(service: Any) -> None:
    [team] = service.list_budgets("research")
    trends = service.budget_trends(team.id, days=30)
    assert trends.total == 9 and trends.jobs == 4  # its tenants' jobs, not the node's own (none)
    assert [(r.name, r.cost) for r in trends.resources] == [("gpu:a100", 4), ("gpu:h100", 1)]
    assert {c.name: c.cost for c in trends.components}["Resources"] == 5


def test_trends_over_http_carry_the_resources(api: Any) -> None:
    api.service.update_cost_model(api.service.get_cost_model().__class__(resources={"gpu": Decimal("0.001")}))
    made = api.post("/v1/budgets", json={"tenant_id": "acme", "amount": "100", "period": {"type": "monthly"}}).json()
    body = {"job_id": "g1", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "resources": {"gpu:l4": 1000}}
    assert api.post("/v1/jobs", json=body).status_code == 200
    trends = api.get(f"/v1/budgets/{made['id']}/trends").json()
    assert trends["resources"][0]["name"] == "gpu:l4" and Decimal(trends["resources"][0]["cost"]) == 1


def test_the_report_compares_with_the_team_budget_not_a_label_budget_and_nets_refunds(service: Any) -> None:
    service.create_budget(
        Budget(tenant_id="research", amount=D(2), period=BudgetPeriod(type="monthly"), labels={"project": "x"})
    )
    report = service.generate_report("research", BudgetPeriod(type="monthly"))
    assert report.budget_amount == 100 and report.budget_basis == "tenant"  # the team's, not the label budget
    assert report.utilization == D("0.05")  # net 5 of 100: as the budget counts it
    assert any("with project=x" in b.scope for b in report.budgets)
    text = render(report, fmt="text", width=160)
    assert "Net spend 5.00 USD (jobs 9.00, adjustments -4.00)" in text
    assert "Net spend" in render(report, fmt="html") and "(net 5.00)" in render(report, fmt="markdown")
