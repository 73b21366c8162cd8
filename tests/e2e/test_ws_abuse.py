"""``/v1/ws`` under abuse, against a real ``jobbudget serve``: huge and malformed
subscriptions are refused before any lookup with a close frame that says why, idle
sockets cost almost no CPU while a job still reaches them within a second, and a key
may hold only so many sockets.  The server's CPU time is read from ``/proc``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .clients import create_budget, job, next_of
from .conftest import StartServer
from .server import LiveServer

#: The bounds the issue sets.
SUBSCRIBE_CPU_SECONDS = 1.0
IDLE_CPU_SHARE = 0.10
IDLE_SECONDS = 10.0
PUSH_SECONDS = 1.0
SOCKETS, BUDGETS = 20, 300


async def closed_with(ws: ClientConnection, timeout: float = 10.0) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes: its close code and reason, and the messages before."""
    messages: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    frame = closed.value.rcvd
    assert frame is not None, "the server sent no close frame"
    return frame.code, frame.reason, messages


def open_socket(server: LiveServer, key: str | None = None) -> Any:
    return connect(server.ws_url, additional_headers=server.headers(key), open_timeout=10, max_size=None)


@pytest.mark.asyncio
async def test_a_subscription_of_100000_ids_is_refused_within_a_second_of_cpu(
    live_server: LiveServer, record_property: pytest.RecordProperty
) -> None:
    ids = [f"budget-{i}" for i in range(100_000)]  # 1.5 MB: over the WebSocket message limit
    before = live_server.cpu_seconds()
    async with open_socket(live_server) as ws:
        await ws.send(json.dumps({"subscribe": {"budgets": ids}}))
        code, reason, _ = await closed_with(ws)
    spent = live_server.cpu_seconds() - before
    record_property("server_cpu_seconds", spent)
    assert code == 1009 and reason, (code, reason)  # message too big, said by uvicorn's WebSocket layer
    assert spent < SUBSCRIBE_CPU_SECONDS, f"{spent:.2f} s of server CPU"


@pytest.mark.asyncio
async def test_more_than_1000_ids_are_refused_before_any_lookup(
    live_server: LiveServer, record_property: pytest.RecordProperty
) -> None:
    ids = [str(i) for i in range(12_000)]  # under the size limit: the count is checked first
    before = live_server.cpu_seconds()
    async with open_socket(live_server) as ws:
        await ws.send(json.dumps({"subscribe": {"budgets": ids}}, separators=(",", ":")))
        code, reason, messages = await closed_with(ws)
    spent = live_server.cpu_seconds() - before
    record_property("server_cpu_seconds", spent)
    assert code == 4400 and reason == "at most 1000 budgets per socket, got 12000", (code, reason)
    assert messages == [{"type": "error", "code": "VALIDATION_FAILED", "message": reason, "field": "subscribe.budgets"}]
    assert spent < 0.5, f"{spent:.2f} s of server CPU"


MALFORMED: dict[str, tuple[str | bytes, int, str]] = {
    "100000 nested brackets": ("[" * 100_000, 4400, "not JSON: nested too deeply"),
    "binary": (b"\x00binary", 4400, "send the subscription as a JSON text message, not binary"),
    "not JSON": ("subscribe me", 4400, "not JSON: Expecting value"),
    "over the size limit": ("x" * 200_000, 1009, ""),
    "a list": ("[]", 4400, 'send {"subscribe"'),
    "no subscribe": ('{"subscribe": 5}', 4400, 'send {"subscribe"'),
    "another key beside subscribe": ('{"subscribe": {"budgets": []}, "more": 1}', 4400, 'send {"subscribe"'),
    "an unknown field": ('{"subscribe": {"colour": "red"}}', 4400, "unknown field: subscribe takes budgets and tenant"),
    "budgets not a list": ('{"subscribe": {"budgets": "b1"}}', 4400, "subscribe.budgets must be a list of budget ids"),
    "a number for an id": ('{"subscribe": {"budgets": [1]}}', 4400, "subscribe.budgets[0] is not a budget id"),
    "an id too long": (json.dumps({"subscribe": {"budgets": ["b" * 65]}}), 4400, "subscribe.budgets[0] is not"),
    "a control character in the tenant": ('{"subscribe": {"tenant": "a\\u0000b"}}', 4400, "subscribe.tenant must"),
    "the same key twice": ('{"subscribe": {}, "subscribe": {}}', 4400, "not JSON: an object has the same key twice"),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(MALFORMED))
async def test_each_malformed_first_message_gets_a_close_frame_with_a_reason(
    live_server: LiveServer, case: str
) -> None:
    message, expected_code, expected_reason = MALFORMED[case]
    async with open_socket(live_server) as ws:
        await ws.send(message)
        code, reason, messages = await closed_with(ws)
    assert code == expected_code and reason.startswith(expected_reason) and reason, (code, reason)
    if code == 4400:  # the same reason as an error message first
        assert [m["type"] for m in messages] == ["error"] and messages[0]["message"] == reason
    log = live_server.log()
    assert "Traceback" not in log and "RecursionError" not in log, log


@pytest.mark.asyncio
async def test_idle_sockets_cost_almost_no_cpu_and_a_job_is_still_pushed_within_a_second(
    live_server: LiveServer, record_property: pytest.RecordProperty
) -> None:
    with live_server.client() as client:
        for i in range(BUDGETS):
            made = client.post("/v1/budgets", json={"tenant_id": "e2e-idle", "queue_name": f"q{i}", "amount": "100"})
            assert made.status_code == 201, made.text
    sockets: list[ClientConnection] = []
    try:
        for _ in range(SOCKETS):
            ws = await open_socket(live_server)
            sockets.append(ws)
            await ws.send(json.dumps({"subscribe": {"tenant": "e2e-idle"}}))
        for ws in sockets:  # every socket's snapshot: 300 statuses
            assert len((await next_of(ws, "subscribed", timeout=60))["budgets"]) == BUDGETS
            for _ in range(BUDGETS):
                await next_of(ws, "status", timeout=60)
        await asyncio.sleep(1.0)  # let the snapshots' work finish
        before, started = live_server.cpu_seconds(), time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        share = (live_server.cpu_seconds() - before) / (time.monotonic() - started)
        record_property("idle_cpu_share", round(share, 4))
        assert share < IDLE_CPU_SHARE, f"{SOCKETS} sockets x {BUDGETS} budgets, no job: {share:.1%} of a core"
        async with httpx.AsyncClient(base_url=live_server.url, headers=live_server.headers(), timeout=10) as client:
            started = time.monotonic()
            stored = await client.post("/v1/jobs", json={**job("e2e-idle", "idle-1"), "queue_name": "q7"})
        assert stored.status_code == 200, stored.text
        pushed = await asyncio.gather(
            *(next_of(ws, "status", timeout=started + PUSH_SECONDS - time.monotonic()) for ws in sockets)
        )
        record_property("push_latency_seconds", round(time.monotonic() - started, 3))
        assert {p["current_spend"] for p in pushed} == {stored.json()["total_cost"]}
        assert {p["queue_name"] for p in pushed} == {"q7"}
    finally:
        for ws in sockets:
            await ws.close()


@pytest.mark.asyncio
async def test_the_sockets_of_one_key_are_bounded(start_server: StartServer) -> None:
    server = start_server(config={"ws_max_sockets_per_key": 3})
    create_budget(server, "e2e-bound")
    other = json.loads(server.cli("apikey", "create", "--role", "reporter", "--json"))["key"]
    held = [await open_socket(server) for _ in range(3)]
    try:
        for ws in held:
            await ws.send(json.dumps({"subscribe": {"tenant": "e2e-bound"}}))
            await next_of(ws, "status")
        async with open_socket(server) as extra:
            code, reason, _ = await closed_with(extra)
        assert (code, reason) == (4429, "too many open sockets for this API key (at most 3)")
        async with open_socket(server, other) as ws:  # another key is not affected
            await ws.send(json.dumps({"subscribe": {"tenant": "e2e-bound"}}))
            await next_of(ws, "status")
        await held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server frees the slot once it has seen the close
            async with open_socket(server) as ws:
                await ws.send(json.dumps({"subscribe": {"tenant": "e2e-bound"}}))
                try:
                    await next_of(ws, "status", timeout=5)
                    break
                except ConnectionClosed:
                    assert time.monotonic() < deadline, "the closed socket's slot was not freed"
                    await asyncio.sleep(0.1)
    finally:
        for ws in held:
            await ws.close()
