"""What the end-to-end tests do with a server through real clients: budgets and jobs
over httpx, subscriptions over the ``websockets`` library."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from .server import LiveServer

__all__ = ["create_budget", "job", "next_of", "subscribe"]


def create_budget(server: LiveServer, tenant: str, amount: str = "100", queue: str = "") -> dict[str, Any]:
    with server.client() as client:
        response = client.post("/v1/budgets", json={"tenant_id": tenant, "amount": amount, "queue_name": queue})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def job(tenant: str, job_id: str, cpu_time: int = 100_000) -> dict[str, Any]:
    """A finished job for ``POST /v1/jobs`` (usages are JSON numbers)."""
    return {"job_id": job_id, "tenant_id": tenant, "queue_name": "ml", "cpu_time": cpu_time, "memory_mb_seconds": 2048}


async def next_of(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of type ``kind`` within ``timeout`` seconds (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {kind!r} message within {timeout} s")
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), left))
        if message["type"] == kind:
            return message


async def subscribe(server: LiveServer, tenant: str, key: str | None = None) -> tuple[ClientConnection, dict[str, Any]]:
    """An open socket subscribed to ``tenant``, and the first status it was sent."""
    ws = await connect(server.ws_url, additional_headers=server.headers(key), open_timeout=10)
    await ws.send(json.dumps({"subscribe": {"tenant": tenant}}))
    await next_of(ws, "subscribed")
    return ws, await next_of(ws, "status")
