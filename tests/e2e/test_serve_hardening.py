"""``jobbudget serve`` hardening, against the real server: a ``?token=`` key never
reaches its log, nor does a key sent as a WebSocket's first message, ``/metrics`` can require a key (scraped Prometheus-style with a
bearer token), and idle or half-open connections neither lock real clients out nor
stay open past ``http_header_timeout``."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .clients import create_budget, job, next_of
from .conftest import StartServer
from .server import LiveServer

METRICS_TOKEN = "scrape-" + "x" * 32
#: A real request among the idle connections is answered within this (seconds).
PROMPT_SECONDS = 1.0
HEADER_TIMEOUT = 2.0


@pytest.mark.asyncio
async def test_a_token_in_the_query_string_is_masked_in_the_log(live_server: LiveServer) -> None:
    create_budget(live_server, "e2e-log")
    key = live_server.admin_key
    async with connect(f"{live_server.ws_url}?token={key}", open_timeout=10) as ws:
        await ws.send(json.dumps({"subscribe": {"tenant": "e2e-log"}}))
        await next_of(ws, "status")
    async with connect(f"{live_server.ws_url}?a=1&token={key}&b=2", open_timeout=10) as ws:
        await ws.send(json.dumps({"subscribe": {"tenant": "e2e-log"}}))
        await next_of(ws, "status")
    httpx.get(f"{live_server.url}/v1/budgets?token={key}")  # a plain request: the access log
    deadline = time.monotonic() + 10  # the log is written by the server process: wait for the last line
    while '"GET /v1/budgets?token=' not in (log := live_server.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert key not in log and key[:12] not in log
    assert '"WebSocket /v1/ws?token=***" [accepted]' in log, log
    assert '"WebSocket /v1/ws?a=1&token=***&b=2" [accepted]' in log, log
    assert '"GET /v1/budgets?token=*** HTTP/1.1" 401' in log, log


@pytest.mark.asyncio
async def test_a_key_sent_as_the_first_message_streams_and_never_reaches_the_log(live_server: LiveServer) -> None:
    create_budget(live_server, "e2e-first")
    made = json.loads(live_server.cli("apikey", "create", "--role", "tenant", "--tenant", "e2e-first", "--json"))
    key = made["key"]
    async with connect(live_server.ws_url, open_timeout=10) as ws:  # as a browser: no header, no query string
        await ws.send(json.dumps({"auth": key}))
        await ws.send(json.dumps({"subscribe": {"tenant": "e2e-first"}}))  # without waiting for the answer
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "authenticated"}
        assert Decimal((await next_of(ws, "status"))["current_spend"]) == 0
        async with httpx.AsyncClient(base_url=live_server.url, headers=live_server.headers(key), timeout=10) as client:
            stored = await client.post("/v1/jobs", json=job("e2e-first", "first-1"))
        assert stored.status_code == 200, stored.text
        assert Decimal((await next_of(ws, "status"))["current_spend"]) == Decimal(stored.json()["total_cost"])
    unknown = "jb_" + "n" * 8 + "_" + "o" * 43
    async with connect(live_server.ws_url, open_timeout=10) as ws:
        await ws.send(json.dumps({"auth": unknown}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "missing, unknown or revoked API key")
    deadline = time.monotonic() + 10  # the log is written by the server process: wait for the sockets' lines
    while (log := live_server.log()).count('"WebSocket /v1/ws" [accepted]') < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert log.count('"WebSocket /v1/ws" [accepted]') >= 2, log
    assert key not in log and key[:12] not in log and unknown[:12] not in log


@pytest.mark.asyncio
async def test_pages_of_other_sites_cannot_hold_the_servers_waiting_sockets(live_server: LiveServer) -> None:
    """What a page elsewhere could make its visitors' browsers do: open the stream with
    its own Origin (refused at once), or many sockets that never send a key (at most 8
    from one address wait; the dashboard of another client still connects)."""
    async with connect(live_server.ws_url, origin="http://evil.example", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    own = f"http://127.0.0.1:{live_server.port}"
    held = [await connect(live_server.ws_url, origin=own, open_timeout=10) for _ in range(8)]
    try:
        async with connect(live_server.ws_url, origin=own, open_timeout=10) as ninth:
            with pytest.raises(ConnectionClosed) as refused:
                await asyncio.wait_for(ninth.recv(), 10)
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 1013
        async with connect(live_server.ws_url, open_timeout=10, additional_headers=live_server.headers()) as by_header:
            await by_header.send(json.dumps({"subscribe": {"budgets": []}}))  # a key in the header: never waits
            assert json.loads(await asyncio.wait_for(by_header.recv(), 10))["type"] == "subscribed"
    finally:
        for ws in held:
            await ws.close()


def scrape(server: LiveServer, token: str | None) -> httpx.Response:
    """What Prometheus does with ``authorization: {credentials: ...}``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)


def test_metrics_can_require_a_key(start_server: StartServer) -> None:
    server = start_server(config={"metrics_require_key": True, "metrics_token": METRICS_TOKEN})
    create_budget(server, "e2e-secret-tenant")
    tenant = json.loads(server.cli("apikey", "create", "--role", "tenant", "--tenant", "e2e-secret-tenant", "--json"))
    reporter = json.loads(server.cli("apikey", "create", "--role", "reporter", "--json"))
    for refused, status in [(None, 401), ("jb_nope_nope", 401), ("wrong-token-" + "y" * 30, 401)]:
        answer = scrape(server, refused)
        assert answer.status_code == status and answer.headers["www-authenticate"] == "Bearer", answer.text
        assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
        assert "e2e-secret-tenant" not in answer.text
    forbidden = scrape(server, tenant["key"])  # a tenant key may not see every tenant's spend
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "FORBIDDEN", forbidden.text
    for allowed in (METRICS_TOKEN, server.admin_key, reporter["key"]):
        answer = scrape(server, allowed)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain"), answer.text
        families = {f.name: f for f in text_string_to_metric_families(answer.text)}
        assert families["jobbudget_active_budgets"].samples[0].value == 1
    assert METRICS_TOKEN not in server.log()


def test_metrics_stay_open_by_default(live_server: LiveServer) -> None:
    answer = scrape(live_server, None)
    assert answer.status_code == 200
    assert "jobbudget_budget_checks" in {f.name for f in text_string_to_metric_families(answer.text)}


async def idle_connections(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` connections: half send nothing, half part of a request line."""
    opened = []
    for i in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if i % 2:
            writer.write(b"GET /healthz HT")
            await writer.drain()
        opened.append((reader, writer))
    return opened


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> float:
    """Seconds until the server closes the connection (end of file or a reset)."""
    started = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(1024), timeout)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    assert data == b"", data
    return time.monotonic() - started


async def real_request(server: LiveServer) -> tuple[int, float]:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{server.url}/readyz")
    return answer.status_code, time.monotonic() - started


@pytest.mark.asyncio
async def test_idle_and_half_open_connections_are_closed_and_do_not_lock_clients_out(
    start_server: StartServer, record_property: pytest.RecordProperty
) -> None:
    server = start_server(config={"http_header_timeout": HEADER_TIMEOUT})
    opened_at = time.monotonic()
    idle = await idle_connections(server.port, 500)
    status, took = await real_request(server)
    record_property("request_seconds_beside_500_idle", round(took, 3))
    assert status == 200 and took < PROMPT_SECONDS, (status, took)
    try:
        waits = await asyncio.gather(*(closed_by_server(r, HEADER_TIMEOUT + 5) for r, _ in idle))
    finally:
        for _, writer in idle:
            writer.close()
    closed_after = time.monotonic() - opened_at
    record_property("all_500_closed_after_seconds", round(closed_after, 3))
    assert max(waits) < HEADER_TIMEOUT + 3, max(waits)
    assert closed_after >= HEADER_TIMEOUT  # not before their time either
    assert (await real_request(server))[0] == 200


@pytest.mark.asyncio
async def test_a_flood_of_idle_connections_over_the_limit_still_lets_requests_in(
    start_server: StartServer, record_property: pytest.RecordProperty
) -> None:
    # at the limit, a new connection closes the one that has waited longest for a request
    server = start_server(config={"http_max_connections": 100, "http_header_timeout": 60})
    idle = await idle_connections(server.port, 500)
    try:
        status, took = await real_request(server)
        record_property("request_seconds_beside_500_idle_over_a_limit_of_100", round(took, 3))
        assert status == 200 and took < PROMPT_SECONDS, (status, took)
        still_open = 0
        for reader, _ in idle[-50:]:  # the newest are the ones kept
            try:
                await asyncio.wait_for(reader.read(1), 0.01)
            except TimeoutError:
                still_open += 1
        assert still_open == 50
    finally:
        for _, writer in idle:
            writer.close()


def test_a_request_head_growing_past_the_limit_is_refused(live_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)  # and never ends
        answer = raw.recv(1024)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
