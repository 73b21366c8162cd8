"""A tenant key plays the attacker against a real ``jobbudget serve``: it tries to make
the server send requests to its own loopback and internal addresses (webhook and Slack
channels, written in every odd spelling, and names resolving to loopback), through
budget create and update and the channel test endpoint.  Nothing reaches the local
receiver; errors shown to the tenant carry no connection details; the test endpoint
answers 429 after a few calls.  With the allow-list on, the operator's own channels and
the SMTP server stay out of what a tenant sees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from jobbudget.api.routes_budgets import HIDDEN_TEST_ERROR
from jobbudget.domain.alerts import HIDDEN_DELIVERY_ERROR
from receivers import Receiver, Reply, free_port, http_receivers, loopback_names

from .conftest import StartServer
from .server import LiveServer

#: The tests' conftest allows 127.0.0.1/32 for every server; the attacker's server runs
#: with the default policy: public addresses only.
DEFAULT_POLICY = {"JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS": "[]"}
#: Hosts that all mean this machine (or its network), as a URL can spell them.
SPELLINGS = [
    "127.0.0.1", "localhost", "localhost.", "LocalHost", "api.localhost", "[::1]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]", "2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "127.1",
    "127.0.0.2", "[::]", "0.0.0.0", "0", "169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.0.1", "100.64.0.1",
    "[fd00::1]", "[fe80::1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "127。0。0。1", "example.com@127.0.0.1",
]  # fmt: skip


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with http_receivers() as start:
        yield start()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from .server import start_server

    server = start_server(tmp_path_factory.mktemp("strict-server"), env=DEFAULT_POLICY)
    try:
        yield server
    finally:
        server.kill()


def tenant_key(server: LiveServer, tenant: str) -> str:
    created = json.loads(server.cli("apikey", "create", "--role", "tenant", "--tenant", tenant, "--json"))
    key: str = created["key"]
    return key


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    error: dict[str, Any] = body["error"]
    return error


def channel(kind: str, target: str) -> dict[str, Any]:
    return {"type": kind, "target": target}


def test_internal_targets_are_refused_when_stored(strict_server: LiveServer, receiver: Receiver) -> None:
    key = tenant_key(strict_server, "mallory")
    with strict_server.client(key) as tenant:
        for kind in ("webhook", "slack"):
            for host in SPELLINGS:
                target = f"http://{host}:{receiver.port}/services/T0/B0/hook"
                body = {"tenant_id": "mallory", "amount": "10", "notifications": [channel(kind, target)]}
                refused = tenant.post("/v1/budgets", json=body)
                assert refused.status_code == 422, (kind, host, refused.text)
                error = error_of(refused)
                assert error["field"] == "notifications[0].target", (host, error)
                assert "public addresses only" in error["message"], (host, error)
        fine = channel("webhook", "https://hooks.example.com/in")
        created = tenant.post("/v1/budgets", json={"tenant_id": "mallory", "amount": "10", "notifications": [fine]})
        assert created.status_code == 201, created.text
        budget_id = created.json()["id"]
        for host in ("0x7f.1", "[::ffff:169.254.169.254]", "localhost"):
            sneaky = channel("webhook", f"http://{host}:{receiver.port}/hook")
            patched = tenant.patch(f"/v1/budgets/{budget_id}", json={"notifications": [fine, sneaky]})
            assert patched.status_code == 422 and error_of(patched)["field"] == "notifications[1].target"
        listed = tenant.get("/v1/budgets").json()
        assert [b["notifications"][0]["target"] for b in listed] == ["https://hooks.example.com/***"]
    assert receiver.requests == []


def test_names_resolving_to_loopback_are_refused_when_sent(strict_server: LiveServer, receiver: Receiver) -> None:
    names = loopback_names()
    if not names:
        pytest.skip("no name of this machine resolves to a loopback address")
    key = tenant_key(strict_server, "trudy")
    targets = [channel(kind, f"http://{name}:{receiver.port}/hook") for name in names for kind in ("webhook", "slack")]
    with strict_server.client(key) as tenant, strict_server.client() as admin:
        created = tenant.post("/v1/budgets", json={"tenant_id": "trudy", "amount": "10", "notifications": targets})
        assert created.status_code == 201, created.text  # names are checked each time they are resolved
        budget_id = created.json()["id"]
        detailed = admin.post(f"/v1/budgets/{budget_id}/channels/0/test")
        assert detailed.status_code == 502 and error_of(detailed)["code"] == "TARGET_NOT_ALLOWED"
        assert f"{names[0]} resolves to 127." in error_of(detailed)["message"]
        for index in range(1, min(len(targets), 4)):
            hidden = tenant.post(f"/v1/budgets/{budget_id}/channels/{index}/test")
            assert hidden.status_code == 502, hidden.text
            assert error_of(hidden) == {"code": "DELIVERY_FAILED", "message": HIDDEN_TEST_ERROR, "field": None}
    assert receiver.requests == []
    assert "target not allowed" in strict_server.log()


def test_the_test_endpoint_is_rate_limited(strict_server: LiveServer) -> None:
    tenant, other_key = tenant_key(strict_server, "eve"), tenant_key(strict_server, "eve")
    unreachable = [channel("webhook", "https://unreachable.invalid/hook")]
    budgets = []
    with strict_server.client(tenant) as client, strict_server.client(other_key) as other:
        for _ in range(2):
            made = client.post("/v1/budgets", json={"tenant_id": "eve", "amount": "10", "notifications": unreachable})
            assert made.status_code == 201, made.text
            budgets.append(made.json()["id"])
        answers = [client.post(f"/v1/budgets/{budgets[0]}/channels/0/test").status_code for _ in range(5)]
        assert answers == [502] * 5  # the default: 5 a minute per key and per budget
        limited = client.post(f"/v1/budgets/{budgets[0]}/channels/0/test")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        error = error_of(limited)
        assert error["code"] == "RATE_LIMITED" and error["field"] is None and "a minute" in error["message"]
        per_key = client.post(f"/v1/budgets/{budgets[1]}/channels/0/test")  # another budget, the same key
        assert per_key.status_code == 429 and "per API key" in error_of(per_key)["message"]
        per_budget = other.post(f"/v1/budgets/{budgets[0]}/channels/0/test")  # another key, the same budget
        assert per_budget.status_code == 429 and "per budget" in error_of(per_budget)["message"]
        assert other.post(f"/v1/budgets/{budgets[1]}/channels/0/test").status_code == 502


def test_no_connection_details_for_tenants(start_server: StartServer) -> None:
    """With 127.0.0.1 allowed (the tests' allow-list), a tenant could once tell a closed
    port from an open one by the error; now every failure reads the same."""
    with http_receivers() as start:
        answers_404, operators = start(default=Reply(404, echo=True)), start()
        dead_port, dead_smtp = free_port(), free_port()
        config = {
            "cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"},
            "smtp_host": "127.0.0.1",
            "smtp_port": dead_smtp,
            "channel_test_rate_limit_per_minute": 10,  # three by the tenant, three by the admin
            "notification_channels": [{**channel("webhook", operators.url("/ops/s3cr3t")), "events": ["warning"]}],
        }
        server = start_server(config=config)
        key = tenant_key(server, "acme")
        probes = [
            channel("webhook", f"http://127.0.0.1:{dead_port}/probe"),
            {**channel("webhook", answers_404.url("/admin/panel")), "events": ["warning"]},
            {"type": "email", "target": "ops@acme.example", "events": ["warning"]},
        ]
        with server.client(key) as tenant, server.client() as admin:
            made = tenant.post("/v1/budgets", json={"tenant_id": "acme", "amount": "10", "notifications": probes})
            assert made.status_code == 201, made.text
            budget_id = made.json()["id"]
            seen = [tenant.post(f"/v1/budgets/{budget_id}/channels/{i}/test") for i in range(3)]
            assert {r.status_code for r in seen} == {502}
            assert {r.text for r in seen} == {seen[0].text}  # closed port, HTTP 404, SMTP down: one answer
            details = [error_of(admin.post(f"/v1/budgets/{budget_id}/channels/{i}/test"))["message"] for i in range(3)]
            assert "connection failed" in details[0] and "answered HTTP 404" in details[1]
            assert f"127.0.0.1:{dead_smtp}" in details[2]

            job = {"job_id": "j1", "tenant_id": "acme", "queue_name": "ml", "cpu_time": 80_000}  # $8 of $10
            assert tenant.post("/v1/jobs", json=job).status_code == 200
            server.cli("alerts", "dispatch")
            [alert] = tenant.get("/v1/alerts").json()
            [everything] = admin.get("/v1/alerts").json()
        cli_text = server.cli("alerts", "list", "--json")

    assert len(everything["deliveries"]) == 4 and len(operators.requests) == 1  # the budget's three, the operator's
    admin_errors = " ".join(d["last_error"] or "" for d in everything["deliveries"])
    assert "HTTP 404" in admin_errors and str(dead_smtp) in admin_errors
    assert "HTTP 404" in cli_text and str(dead_smtp) in cli_text  # the operator's view
    assert sorted(d["channel_type"] for d in alert["deliveries"]) == [
        "email",
        "webhook",
        "webhook",
    ]  # not the operator's
    assert {d["last_error"] for d in alert["deliveries"]} == {HIDDEN_DELIVERY_ERROR}
    shown = " ".join(f"{d['status']} {d['last_error']}" for d in alert["deliveries"])  # its own targets show ports
    assert str(operators.port) not in json.dumps([d["target"] for d in alert["deliveries"]])
    for leak in (str(dead_smtp), str(operators.port), "/ops", "404", "SMTP", "refused", "connection"):
        assert leak not in shown, leak
    assert Decimal(alert["event"]["current_spend"]) == 8
