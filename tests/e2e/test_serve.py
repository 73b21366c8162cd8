"""``jobbudget serve`` end to end: health, admission checks, job batches, Prometheus
metrics, the live WebSocket and a prompt shutdown, all through real clients."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .clients import create_budget, job, next_of, subscribe
from .conftest import StartServer
from .server import LiveServer

#: The bounds the issue sets: a stored job reaches a subscriber within 1 s, and the
#: server exits within 2 s of SIGTERM or Ctrl-C while a WebSocket is open.
PUSH_SECONDS = 1.0
SHUTDOWN_SECONDS = 2.0
PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def test_health_and_readiness(live_server: LiveServer) -> None:
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{live_server.url}/readyz").json() == {"status": "ready"}
    refused = httpx.get(f"{live_server.url}/v1/budgets")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"]["code"] == "UNAUTHENTICATED"


def test_check_and_a_job_batch(live_server: LiveServer) -> None:
    create_budget(live_server, "e2e-batch")
    with live_server.client() as client:
        check = client.post("/v1/check", json={"tenant_id": "e2e-batch", "queue_name": "ml"})
        assert check.status_code == 200, check.text
        assert check.json()["type"] == "allow" and check.json()["allowed"] is True
        batch = {"jobs": [job("e2e-batch", f"j{i}") for i in range(3)]}
        stored = client.post("/v1/jobs", json=batch)
        assert stored.status_code == 200, stored.text
        body = stored.json()
        assert body["inserted"] == 3 and body["duplicates"] == []
        costs = [Decimal(j["total_cost"]) for j in body["jobs"]]
        assert Decimal(body["total_cost"]) == sum(costs)
        assert all(PLAIN_DECIMAL.match(j["total_cost"]) for j in body["jobs"]), body
        again = client.post("/v1/jobs", json=batch).json()
        assert again["inserted"] == 0 and again["duplicates"] == ["j0", "j1", "j2"]
        status = client.post("/v1/check", json={"tenant_id": "e2e-batch", "queue_name": "ml"}).json()
        assert Decimal(status["current_spend"]) == sum(costs)


def test_metrics_parse_as_prometheus_text(live_server: LiveServer) -> None:
    create_budget(live_server, "e2e-metrics")
    with live_server.client() as client:
        client.post("/v1/check", json={"tenant_id": "e2e-metrics"}).raise_for_status()
        cost = client.post("/v1/jobs", json=job("e2e-metrics", "m1")).json()["total_cost"]
    response = httpx.get(f"{live_server.url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    checks = {
        s.labels["action"]: s.value for s in families["jobbudget_budget_checks"].samples if s.name.endswith("_total")
    }
    assert checks.get("allow", 0) >= 1
    spend = [s for s in families["jobbudget_spend_tracked_dollars"].samples if s.labels.get("tenant") == "e2e-metrics"]
    assert [s.value for s in spend] == [pytest.approx(float(cost))]
    assert families["jobbudget_active_budgets"].samples[0].value >= 1
    assert families["jobbudget_budget_checks"].type == "counter"


@pytest.mark.asyncio
async def test_a_stored_job_is_pushed_within_a_second(
    live_server: LiveServer, record_property: pytest.RecordProperty
) -> None:
    budget = create_budget(live_server, "e2e-live")
    ws, first = await subscribe(live_server, "e2e-live")
    async with ws, httpx.AsyncClient(base_url=live_server.url, headers=live_server.headers()) as client:
        assert first["budget_id"] == budget["id"] and first["current_spend"] == "0"
        started = time.monotonic()
        stored = await client.post("/v1/jobs", json=job("e2e-live", "w1"))
        pushed = await next_of(ws, "status", timeout=started + PUSH_SECONDS - time.monotonic())
        latency = time.monotonic() - started
    record_property("push_latency_seconds", round(latency, 3))
    assert stored.status_code == 200, stored.text
    assert pushed["current_spend"] == stored.json()["total_cost"]
    assert pushed["action"] == "allow" and PLAIN_DECIMAL.match(pushed["utilization"])


@pytest.mark.asyncio
async def test_a_bad_key_is_closed_with_4401(live_server: LiveServer) -> None:
    async with connect(f"{live_server.ws_url}?token=jb_nope_nope", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("sig", "group"), [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["SIGTERM", "ctrl-c-to-the-group"]
)
async def test_shutdown_with_an_open_websocket_is_prompt(
    start_server: StartServer, sig: signal.Signals, group: bool, record_property: pytest.RecordProperty
) -> None:
    server = start_server()
    create_budget(server, "e2e-stop")
    ws, _ = await subscribe(server, "e2e-stop")
    async with ws:
        took = await asyncio.to_thread(server.stop, sig, group=group)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    record_property("shutdown_seconds", round(took, 3))
    assert took < SHUTDOWN_SECONDS, f"{sig.name}: {took:.2f} s\n{server.log()}"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # service restart
    assert server.process.returncode in (0, -sig), server.process.returncode
    log = server.log()
    assert "Application shutdown complete" in log and "Traceback" not in log, log


@pytest.mark.asyncio
async def test_shutdown_before_the_subscription_is_prompt(start_server: StartServer) -> None:
    server = start_server()
    async with connect(server.ws_url, additional_headers=server.headers(), open_timeout=10):
        took = await asyncio.to_thread(server.stop)
    assert took < SHUTDOWN_SECONDS, server.log()


@pytest.mark.asyncio
async def test_subscribe_protocol_errors(live_server: LiveServer) -> None:
    async with connect(live_server.ws_url, additional_headers=live_server.headers(), open_timeout=10) as ws:
        await ws.send(json.dumps({"subscribe": {"budgets": ["no-such-budget"]}}))
        assert (await next_of(ws, "error"))["code"] == "BUDGET_NOT_FOUND"
        assert (await next_of(ws, "subscribed"))["budgets"] == []
    async with connect(live_server.ws_url, additional_headers=live_server.headers(), open_timeout=10) as ws:
        await ws.send(b"\x00binary")
        assert (await next_of(ws, "error"))["code"] == "INVALID_JSON"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400 and closed.value.rcvd.reason
