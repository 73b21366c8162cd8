"""A key revoked by another process (``jobbudget apikey revoke`` from the command line)
stops streaming: its open WebSockets on a real ``jobbudget serve`` are closed with
4401 ``API key revoked`` within :data:`REVOKED_SECONDS`, and the server refuses the
key on HTTP from then on."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .clients import create_budget, next_of
from .server import LiveServer

#: The server re-checks each key with open sockets every second, with a lookup at most
#: a second old (the HTTP key cache keeps 5 s): 2 s, plus a poll and the CLI's commit.
REVOKED_SECONDS = 3.0


@pytest.mark.asyncio
async def test_a_revoked_key_is_closed_within_seconds(
    live_server: LiveServer, record_property: pytest.RecordProperty
) -> None:
    create_budget(live_server, "e2e-revoke")
    made = json.loads(live_server.cli("apikey", "create", "--role", "tenant", "--tenant", "e2e-revoke", "--json"))
    headers = live_server.headers(made["key"])
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=10) as client:
        assert client.get("/v1/budgets").status_code == 200  # the key is now in the server's 5 s cache
    sockets = [
        await connect(live_server.ws_url, additional_headers=headers, open_timeout=10),
        await connect(f"{live_server.ws_url}?token={made['key']}", open_timeout=10),
    ]
    try:
        for ws in sockets:
            await ws.send(json.dumps({"subscribe": {"tenant": "e2e-revoke"}}))
            await next_of(ws, "status")
        await asyncio.to_thread(live_server.cli, "apikey", "revoke", made["id"])  # another process
        closed_at: list[datetime] = []
        for ws in sockets:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            closed_at.append(datetime.now(UTC))
            frame = closed.value.rcvd
            assert frame is not None and (frame.code, frame.reason) == (4401, "API key revoked"), frame
    finally:
        for ws in sockets:
            await ws.close()
    (listed,) = [k for k in json.loads(live_server.cli("apikey", "list", "--json")) if k["id"] == made["id"]]
    revoked_at = datetime.fromisoformat(listed["revoked_at"])  # written by the CLI just before its commit
    took = max((at - revoked_at).total_seconds() for at in closed_at)
    record_property("closed_after_seconds", round(took, 3))
    assert took < REVOKED_SECONDS, f"closed {took:.2f} s after the revocation"
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=10) as client:
        refused = client.get("/v1/budgets")  # the sockets' check evicted the cached key: no 5 s wait
    assert refused.status_code == 401, refused.text
    async with connect(live_server.ws_url, additional_headers=headers, open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
