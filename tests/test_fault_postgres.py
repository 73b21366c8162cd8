"""PostgreSQL stopped and restarted under load (a private cluster, see
``private_servers.py``): the service and the HTTP API report the outage as the
retryable ``STORAGE_UNAVAILABLE`` (503 with ``Retry-After``, never a 500), recover by
themselves when the database is back, and a client that retries lost nothing and
counted nothing twice."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.api.app import create_app
from jobbudget.domain.errors import JobBudgetError, error_code, is_retryable
from private_servers import PrivatePostgres, TcpProxy, private_postgres, private_redis, wait_until
from receivers import free_port

pytestmark = pytest.mark.slow  # real faults: local runs may skip them with -m "not slow"; CI runs them
__all__ = ["private_postgres", "private_redis"]  # the fixtures, imported for pytest

#: One nano-dollar per CPU second: every job costs an exact, odd amount.
NANO_MODEL = {"cpu_time_weight": "0.000000001", "base_job_weight": "0"}
OUTAGE_SECONDS = 3.0


@pytest.fixture
def service(private_postgres: PrivatePostgres) -> Iterator[BudgetService]:
    config = Config(
        database_url=private_postgres.url,
        database_schema=f"fault_{uuid.uuid4().hex[:10]}",
        cost_model=NANO_MODEL,
        notifications_in_background=False,
    )
    with BudgetService(config) as svc:
        svc.create_budget(Budget(tenant_id="acme", amount=Decimal(10**6), period=BudgetPeriod("monthly")))
        yield svc


def _job(job_id: str, nanos: int) -> JobMetrics:
    return JobMetrics(job_id, "acme", "q", Decimal(nanos), Decimal(0), Decimal(0), Decimal(0), Decimal(0))


@dataclass
class Ledger:
    """What the clients were told: job id -> cost in nano-dollars, once acknowledged."""

    acked: dict[str, int] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    retried: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, status: int, problem: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if problem:
                self.problems.append(problem)


def _assert_exact(service: BudgetService, acked: dict[str, int]) -> None:
    """Every acknowledged job stored once; daily totals and budget spend are their sum."""
    store: Any = service.store
    with store.engine.connect() as conn:
        stored = Counter(
            row[0] for row in conn.execute(sa.text("SELECT job_id FROM job_costs WHERE tenant_id = 'acme'"))
        )
    assert not [j for j, n in stored.items() if n > 1], "a job stored twice"
    assert set(stored) == set(acked), f"lost: {set(acked) - set(stored)}, unknown: {set(stored) - set(acked)}"
    expected = Decimal(sum(acked.values())) / 10**9
    today = service.now().date()
    days = service.get_daily_costs("acme", start=today - timedelta(days=1), end=today + timedelta(days=1))
    assert sum(d.total_jobs for d in days) == len(acked)
    assert sum((d.total_cost for d in days), Decimal(0)) == expected
    for budget in service.list_budgets("acme"):
        assert budget.id is not None
        assert service.get_budget_status(budget.id).current_spend == expected
    # and from the ledger alone, as a new process would load it
    with BudgetService(service.config) as fresh:
        for budget in fresh.list_budgets("acme"):
            assert budget.id is not None
            assert fresh.get_budget_status(budget.id).current_spend == expected


# -- (a) through the service -----------------------------------------------------------


def test_service_reports_the_outage_as_retryable_and_recovers_by_itself(
    service: BudgetService, private_postgres: PrivatePostgres
) -> None:
    ledger = Ledger()
    stop = threading.Event()
    raw: list[BaseException] = []
    unavailable = Counter[str]()

    def worker(n: int) -> None:
        rng = random.Random(n)
        while not stop.is_set():
            job_id, nanos = f"w{n}-{uuid.uuid4().hex[:12]}", rng.randrange(1, 10**10)
            while True:  # a real reporter retries what failed retryably
                try:
                    cost = service.process_job_cost(_job(job_id, nanos))
                    assert cost.total_cost == Decimal(nanos) / 10**9
                    with ledger.lock:
                        ledger.acked[job_id] = nanos
                    ledger.note(200)
                    break
                except JobBudgetError as exc:
                    if not (error_code(exc) == "STORAGE_UNAVAILABLE" and is_retryable(exc)):
                        raw.append(exc)
                        return
                    ledger.note(503)
                    unavailable["process_job_cost"] += 1
                    time.sleep(0.05)
                except Exception as exc:  # a raw driver error: the bug this test is for
                    raw.append(exc)
                    return

    budget_id = str(service.list_budgets()[0].id)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(ledger.acked) >= 30, 20)
        for _ in range(2):  # a stop of a few seconds, then a second outage
            private_postgres.stop()
            calls = {
                "process_job_cost": lambda: service.process_job_cost(_job(uuid.uuid4().hex, 1)),
                "get_budget_status": lambda: service.get_budget_status(budget_id),
                "ping": service.ping,
                "list_budgets": service.list_budgets,
            }
            started = time.monotonic()
            while time.monotonic() - started < OUTAGE_SECONDS:
                for name, call in calls.items():
                    try:
                        call()
                    except JobBudgetError as exc:
                        assert error_code(exc) == "STORAGE_UNAVAILABLE" and is_retryable(exc), (name, exc)
                        unavailable[name] += 1
                    else:  # budgets and their spend may be served from memory
                        assert name in ("list_budgets", "get_budget_status"), f"{name} succeeded with the database down"
                time.sleep(0.1)
            private_postgres.start()
            before = len(ledger.acked)
            recovered = wait_until(lambda: len(ledger.acked) > before + 10, 20)  # noqa: B023
            service.ping()
            assert recovered < 15
        private_postgres.restart()  # stop and start at once: every pooled connection is stale
        before = len(ledger.acked)
        wait_until(lambda: len(ledger.acked) > before + 10, 20)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not raw, raw[:3]
    assert unavailable["process_job_cost"] > 0 and unavailable["ping"] > 0
    _assert_exact(service, ledger.acked)
    print(f"\nservice: jobs={len(ledger.acked)} unavailable={dict(unavailable)}")


# -- (b) and (c) through the HTTP API ----------------------------------------------------


@pytest.fixture
def api(service: BudgetService) -> Iterator[tuple[str, str]]:
    """A real uvicorn server over ``service``: (base url, admin key)."""
    _, key = service.create_api_key(role="admin", name="fault")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20)
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(timeout=30)


def _check_error(ledger: Ledger, response: httpx.Response) -> None:
    if response.status_code == 503:
        body = response.json()
        ok = "retry-after" in response.headers and body["error"]["code"] == "STORAGE_UNAVAILABLE"
        ledger.note(503, None if ok else f"503 without Retry-After/code: {response.headers} {body}")
    else:
        ledger.note(response.status_code, f"{response.request.url.path}: {response.status_code} {response.text}")


def test_api_answers_503_during_the_outage_and_a_retrying_client_loses_nothing(
    service: BudgetService, private_postgres: PrivatePostgres, api: tuple[str, str]
) -> None:
    base, key = api
    ledger = Ledger()
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {key}"}

    def poster(n: int) -> None:
        rng = random.Random(100 + n)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                job_id, nanos = f"api{n}-{uuid.uuid4().hex[:12]}", rng.randrange(1, 10**10)
                body = {"job_id": job_id, "tenant_id": "acme", "queue_name": "q", "cpu_time": nanos}
                attempts = 0
                while True:  # retried until acknowledged, as a real client does on 503
                    attempts += 1
                    r = client.post("/v1/jobs", json=body)
                    if r.status_code == 200:
                        ledger.note(200)
                        assert Decimal(r.json()["total_cost"]) in (Decimal(nanos) / 10**9, Decimal(0))
                        with ledger.lock:
                            ledger.acked[job_id] = nanos
                            ledger.retried += attempts > 1
                        break
                    _check_error(ledger, r)
                    if r.status_code != 503:
                        return
                    time.sleep(0.1)

    def admitter() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                for path, body in (
                    ("/v1/check", {"tenant_id": "acme", "queue_name": "q"}),
                    ("/v1/admit", {"tenant_id": "acme", "queue_name": "q", "estimated_cost": "0.5"}),
                ):
                    r = client.post(path, json=body)
                    if r.status_code != 200:
                        _check_error(ledger, r)
                        continue
                    ledger.note(200)
                    rid = r.json().get("reservation_id")
                    if rid:
                        released = client.delete(f"/v1/reservations/{rid}")
                        if released.status_code == 200:
                            ledger.note(200)
                        else:
                            _check_error(ledger, released)
                r = client.get("/readyz")
                ledger.note(r.status_code) if r.status_code == 200 else _check_error(ledger, r)
                time.sleep(0.02)

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=admitter))
    for t in threads:
        t.start()
    recoveries: list[float] = []
    try:
        wait_until(lambda: len(ledger.acked) >= 30, 30)
        for down in (OUTAGE_SECONDS, 0.0):  # a stop of a few seconds, then a bare restart
            private_postgres.stop()
            time.sleep(down)
            before = ledger.statuses[503]
            private_postgres.start()
            up = time.monotonic()
            acked = len(ledger.acked)
            wait_until(lambda: len(ledger.acked) > acked + 10, 30)  # noqa: B023
            recoveries.append(time.monotonic() - up)
            if down:
                assert ledger.statuses[503] > before, "no 503 while the database was down"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not ledger.problems, ledger.problems[:5]
    assert ledger.statuses[500] == 0
    assert set(ledger.statuses) <= {200, 503}, ledger.statuses
    assert service.open_reservations() == 0
    _assert_exact(service, ledger.acked)
    print(
        f"\napi: requests={sum(ledger.statuses.values())} statuses={dict(ledger.statuses)} "
        f"jobs={len(ledger.acked)} retried-jobs={ledger.retried} recovery={[round(r, 2) for r in recoveries]}s"
    )


# -- a commit whose answer is lost ---------------------------------------------------------


@pytest.mark.parametrize("shared", ["memory", "redis"])
def test_a_job_whose_commit_answer_was_lost_counts_once_its_retry_is_acknowledged(
    private_postgres: PrivatePostgres, shared: str, request: pytest.FixtureRequest
) -> None:
    cutter = TcpProxy(("127.0.0.1", private_postgres.port))  # cuts a COMMIT's answer when armed
    url = f"postgresql+psycopg://postgres@127.0.0.1:{cutter.port}/postgres"
    redis_url = request.getfixturevalue("private_redis").url if shared == "redis" else None
    schema = f"cut_{uuid.uuid4().hex[:10]}"
    config = Config(database_url=url, database_schema=schema, cost_model=NANO_MODEL, redis_url=redis_url)
    try:
        with BudgetService(config) as service:
            budget = service.create_budget(Budget(tenant_id="acme", amount=Decimal(10), period=BudgetPeriod("monthly")))
            assert budget.id is not None
            service.process_job_cost(_job("first", 10**9))
            service.core.sync.watch_budgets()  # the budget is old news: no reload is due for it
            time.sleep(1.5)
            cutter.cut_after(b"COMMIT\x00")
            with pytest.raises(JobBudgetError) as lost:
                service.process_job_cost(_job("second", 9 * 10**9))
            assert cutter.cuts == 1, lost.value
            assert error_code(lost.value) == "STORAGE_UNAVAILABLE" and is_retryable(lost.value)
            # the ledger holds the job: enforcement counts it within a tick, before any retry
            took = wait_until(lambda: service.check_budget_compliance("acme", "q").type == "block", 5)
            retried = service.process_job_cost(_job("second", 9 * 10**9))  # the reporter retries
            assert retried.duplicate  # the first attempt was committed
            _assert_exact(service, {"first": 10**9, "second": 9 * 10**9})
            assert service.check_budget_compliance("acme", "q").type == "block"  # $10 of $10
            if shared == "redis":  # the shared counters agree with the ledger too
                wait_until(lambda: service.core.hot.counters is not None and not service.core.hot.dirty, 5)
                assert service.get_budget_status(budget.id).current_spend == Decimal(10)
            print(f"\nlost commit answer: counted again after {took:.2f}s, retry was a duplicate")
    finally:
        cutter.close()
