"""A check never blocks the event loop (issue 17), on a real uvicorn server in this
process.  A period has just ended, so the next checks roll it: they need the service's
write lock, which is held (by another thread, as an ingest or a resync holds it
across database I/O), or the roll's own ledger read is stalled.  More checks than the
admission pool has threads then wait; meanwhile ``/healthz`` (on the loop),
``/readyz`` and ``GET /v1/budgets`` (the default thread pool) still answer within
milliseconds, and once the lock is free every check is answered."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, Config
from jobbudget.api.app import create_app
from jobbudget.api.threads import ADMISSION_THREADS
from jobbudget.domain.records import SpendKey
from jobbudget.storage.sql.store import SqlStore
from private_servers import wait_until
from receivers import free_port

#: Checks sent while the roll is stuck: more than the admission pool's threads.
STUCK_CHECKS = ADMISSION_THREADS + 20
#: How long the lock is held while other requests are timed (seconds).
HOLD_SECONDS = 3.0
#: A request that needs neither the lock nor an admission thread: median and worst
#: answer time while checks are stuck (a busy 2-core machine; without the fix they
#: wait the whole HOLD_SECONDS).
PROMPT_MEDIAN = 0.05
PROMPT_MAX = 1.0


class StallingStore(SqlStore):
    """A SQLite store whose ledger reads wait for ``release`` while ``stalled``."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.stalled = False
        self.release = threading.Event()
        self.reads_waiting = 0

    def load_spend(self, keys: Sequence[SpendKey]) -> dict[SpendKey, Decimal]:
        if self.stalled:
            self.reads_waiting += 1
            self.release.wait(timeout=30)
        return super().load_spend(keys)


@pytest.fixture
def store(tmp_path: Path) -> StallingStore:
    made = StallingStore(f"sqlite:///{tmp_path / 'loop.db'}")
    made.migrate()
    return made


@pytest.fixture
def service(store: StallingStore, clock: FakeClock) -> Iterator[BudgetService]:
    with BudgetService(Config(notifications_in_background=False), clock=clock, store=store) as made:
        made.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
        yield made
    store.release.set()


@pytest.fixture
def api(service: BudgetService) -> Iterator[tuple[str, dict[str, str]]]:
    """A real uvicorn server over ``service``: (base url, admin headers)."""
    _, key = service.create_api_key(role="admin", name="loop")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20)
    yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    server.should_exit = True
    thread.join(timeout=30)


@contextmanager
def held(lock: threading.RLock) -> Iterator[None]:
    """``lock`` held by another thread (an RLock is released by its owner only)."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            done.wait(timeout=60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(timeout=10)
    try:
        yield
    finally:
        done.set()
        holder.join(timeout=10)


def _timed(call: Callable[[], httpx.Response]) -> float:
    """Seconds ``call`` took (inf: no answer within its client's timeout)."""
    started = time.perf_counter()
    try:
        answer = call()
    except httpx.TimeoutException:
        return math.inf
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


def _while_checks_are_stuck(
    url: str, headers: dict[str, str]
) -> tuple[list[Future[httpx.Response]], dict[str, list[float]], bool]:
    """Send STUCK_CHECKS checks, then time other requests while they wait."""
    body = {"tenant_id": "acme", "queue_name": "q"}
    pool = ThreadPoolExecutor(STUCK_CHECKS)
    checks = [
        pool.submit(httpx.post, f"{url}/v1/check", json=body, headers=headers, timeout=60) for _ in range(STUCK_CHECKS)
    ]
    pool.shutdown(wait=False)
    time.sleep(0.5)  # every check has reached the server: the admission pool is full
    times: dict[str, list[float]] = {"healthz": [], "readyz": [], "budgets": []}
    with httpx.Client(base_url=url, headers=headers, timeout=HOLD_SECONDS) as client:
        client.get("/healthz", timeout=30)  # the connection itself (accepted behind the checks'): not timed
        deadline = time.monotonic() + HOLD_SECONDS - 1.0
        # at least 10 rounds: on a loaded machine the waiting checks' own client threads
        # (STUCK_CHECKS of them) slow this loop; the checks stay stuck until we return
        while time.monotonic() < deadline or (len(times["healthz"]) < 10 and time.monotonic() < deadline + 10):
            times["healthz"].append(_timed(lambda: client.get("/healthz")))
            times["readyz"].append(_timed(lambda: client.get("/readyz")))
            times["budgets"].append(_timed(lambda: client.get("/v1/budgets")))
            time.sleep(0.02)
    return checks, times, not any(c.done() for c in checks)


def _assert_prompt(times: dict[str, list[float]], stuck: bool) -> None:
    for route, seconds in times.items():
        assert max(seconds) < PROMPT_MAX, (route, sorted(seconds))
        assert statistics.median(seconds) < PROMPT_MEDIAN, (route, sorted(seconds))
        assert len(seconds) >= 10, times
    assert stuck, "checks were answered while the roll was stuck"


def _assert_answered(checks: list[Future[httpx.Response]]) -> None:
    for check in checks:
        answer = check.result(timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["type"] == "allow"


def test_checks_waiting_for_the_write_lock_do_not_block_the_loop(
    service: BudgetService, clock: FakeClock, api: tuple[str, dict[str, str]]
) -> None:
    url, headers = api
    assert httpx.post(f"{url}/v1/check", json={"tenant_id": "acme"}, headers=headers).status_code == 200
    clock.advance(days=31)  # the period is over: the next check rolls it, under the write lock
    with held(service.core.spend.write):
        checks, times, stuck = _while_checks_are_stuck(url, headers)
    _assert_prompt(times, stuck)
    _assert_answered(checks)


def test_checks_waiting_for_a_stalled_ledger_read_do_not_block_the_loop(
    service: BudgetService, store: StallingStore, clock: FakeClock, api: tuple[str, dict[str, str]]
) -> None:
    url, headers = api
    assert httpx.post(f"{url}/v1/check", json={"tenant_id": "acme"}, headers=headers).status_code == 200
    clock.advance(days=31)
    store.stalled = True  # the roll's read of the new period's spend hangs (a slow database)
    checks, times, stuck = _while_checks_are_stuck(url, headers)
    assert store.reads_waiting >= 1
    store.stalled = False
    store.release.set()
    _assert_prompt(times, stuck)
    _assert_answered(checks)
