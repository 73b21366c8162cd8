"""Against the real ``jobbudget serve``: checks stuck on a stalled Redis (``shared_state:
redis``, the Redis process stopped with SIGSTOP, so every read waits for
``redis_timeout``) never stall the server's event loop: ``/healthz``, ``/readyz`` and
``GET /v1/budgets`` answer within milliseconds meanwhile, and every check is answered
once Redis is back (or its timeout has passed: ``redis_failure_mode: local``)."""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from private_servers import PrivateRedis, private_redis

from .clients import create_budget
from .conftest import StartServer

__all__ = ["private_redis"]  # the fixture, imported for pytest

#: Checks sent while Redis is stopped, and how long it stays stopped (seconds); the
#: server's Redis timeout is longer, so the checks wait the whole time.
CHECKS = 16
STALL_SECONDS = 3.0
REDIS_TIMEOUT = 10.0
#: Answer times of requests that need no Redis (a busy 2-core machine: generous).
PROMPT_MEDIAN = 0.05
PROMPT_MAX = 1.0


@pytest.fixture
def stalled(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """The Redis, to stop and continue (continued again whatever happens)."""
    yield private_redis
    if private_redis.proc is not None:
        os.kill(private_redis.proc.pid, signal.SIGCONT)


def test_checks_stuck_on_a_stalled_redis_do_not_block_the_server(
    start_server: StartServer, stalled: PrivateRedis
) -> None:
    config = {"shared_state": "redis", "redis_url": stalled.url, "redis_timeout": REDIS_TIMEOUT}
    server = start_server(config=config)
    create_budget(server, "e2e-stall")
    body = {"tenant_id": "e2e-stall"}
    with server.client() as client:
        assert client.post("/v1/check", json=body).status_code == 200  # Redis answers
    assert stalled.proc is not None
    os.kill(stalled.proc.pid, signal.SIGSTOP)
    try:
        pool = ThreadPoolExecutor(CHECKS)
        checks = [
            pool.submit(httpx.post, f"{server.url}/v1/check", json=body, headers=server.headers(), timeout=60)
            for _ in range(CHECKS)
        ]
        pool.shutdown(wait=False)
        time.sleep(0.5)  # the checks have reached the server, and wait for Redis
        times: dict[str, list[float]] = {"/healthz": [], "/readyz": [], "/v1/budgets": []}
        with server.client(timeout=30) as client:
            deadline = time.monotonic() + STALL_SECONDS - 0.5
            while time.monotonic() < deadline:
                for path, seconds in times.items():
                    started = time.perf_counter()
                    answer = client.get(path)
                    seconds.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                time.sleep(0.02)
        stuck = not any(c.done() for c in checks)
    finally:
        os.kill(stalled.proc.pid, signal.SIGCONT)
    for path, seconds in times.items():
        assert max(seconds) < PROMPT_MAX, (path, sorted(seconds))
        assert statistics.median(seconds) < PROMPT_MEDIAN, (path, sorted(seconds))
        assert len(seconds) >= 10, times
    assert stuck, "checks were answered while Redis was stopped"
    for check in checks:
        answer = check.result(timeout=REDIS_TIMEOUT + 20)
        assert answer.status_code == 200, answer.text
        assert answer.json()["type"] == "allow"
