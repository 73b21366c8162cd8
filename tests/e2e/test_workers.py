"""``jobbudget serve --workers 2``: both processes start, answer and stop promptly, and
a job stored through one worker reaches subscribers on either."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .clients import create_budget, job, next_of, subscribe
from .conftest import StartServer

#: Subscribers on several sockets, so that some are on the worker that did not store the job.
SOCKETS = 6
PUSH_SECONDS = 2.0
SHUTDOWN_SECONDS = 2.0


@pytest.mark.asyncio
async def test_two_workers_answer_and_stop_promptly(start_server: StartServer) -> None:
    server = start_server(workers=2)
    create_budget(server, "w2")
    with server.client() as client:
        for i in range(10):  # new connections: both workers get some
            with httpx.Client(base_url=server.url, headers=server.headers(), timeout=10) as fresh:
                assert fresh.post("/v1/check", json={"tenant_id": "w2"}).status_code == 200
            stored = client.post("/v1/jobs", json={"jobs": [job("w2", f"a{i}"), job("w2", f"b{i}")]})
            assert stored.status_code == 200 and stored.json()["inserted"] == 2, stored.text
        metrics = client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    checks = sum(s.value for s in families["jobbudget_budget_checks"].samples if s.name.endswith("_total"))
    assert checks == 10  # every worker's samples, merged
    ws, _ = await subscribe(server, "w2")
    async with ws:
        took = await asyncio.to_thread(server.stop)
    assert took < SHUTDOWN_SECONDS, server.log()
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "shared_state",
    [
        "database",
        "auto",  # the default: memory without redis_url, each worker counting the other's commits
    ],
)
async def test_a_job_reaches_subscribers_on_every_worker(start_server: StartServer, shared_state: str) -> None:
    # a budget both workers load at start (one created later is read from the ledger each time)
    budget = ["budget", "create", "--tenant", "w2-live", "--amount", "100"]
    server = start_server(workers=2, config={"shared_state": shared_state}, prepare=[budget])
    sockets = [await subscribe(server, "w2-live") for _ in range(SOCKETS)]
    try:
        assert [Decimal(first["current_spend"]) for _, first in sockets] == [0] * SOCKETS
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(), timeout=10) as client:
            started = time.monotonic()
            stored = (await client.post("/v1/jobs", json=job("w2-live", "x1"))).json()
        pushed = await asyncio.gather(
            *(next_of(ws, "status", timeout=started + PUSH_SECONDS - time.monotonic()) for ws, _ in sockets),
            return_exceptions=True,
        )
        late = [p for p in pushed if isinstance(p, BaseException)]
        assert not late, f"{len(late)} of {SOCKETS} subscribers got no push within {PUSH_SECONDS} s"
        assert {Decimal(p["current_spend"]) for p in pushed if isinstance(p, dict)} == {Decimal(stored["total_cost"])}
    finally:
        for ws, _ in sockets:
            await ws.close()


def test_two_workers_answer_a_kept_alive_connection_without_nagle_delays(start_server: StartServer) -> None:
    """With --workers above 1 uvicorn's listening socket lost TCP_NODELAY, and each
    response on a kept-alive connection waited 40 ms for the client's delayed ACK."""
    server = start_server(workers=2)
    with server.client() as client:
        for _ in range(10):
            client.post("/v1/check", json={"tenant_id": "nagle"})
        took = []
        for _ in range(40):
            started = time.perf_counter()
            assert client.post("/v1/check", json={"tenant_id": "nagle"}).status_code == 200
            took.append(time.perf_counter() - started)
    took.sort()
    assert took[len(took) // 2] < 0.02, f"median {took[len(took) // 2] * 1000:.1f} ms"  # 44 ms before
