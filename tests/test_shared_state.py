"""Many processes, one budget: admissions and spend shared through a real Redis, with
the ledger in a real database (SQLite file or PostgreSQL) as the record."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import IN_CI, POSTGRES_URL
from jobbudget.config import Config
from jobbudget.domain.budget import Budget
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.service import BudgetService

REDIS_URL = "redis://127.0.0.1:6379/0"
#: $1 per job exactly: 10,000 CPU seconds at $0.0001, no base cost.
ONE_DOLLAR_MODEL = {"cpu_time_weight": "0.0001", "base_job_weight": "0"}


def _redis_or_skip() -> redis.Redis:
    client: redis.Redis = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    return client


@pytest.fixture
def prefix() -> Iterator[str]:
    client = _redis_or_skip()
    name = f"jbt{uuid.uuid4().hex[:10]}"
    yield name
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _config(database_url: str, prefix: str, **extra: Any) -> Config:
    return Config(
        database_url=database_url,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        cost_model=ONE_DOLLAR_MODEL,
        notifications_in_background=False,
        **extra,
    )


def _job(job_id: str, tenant: str = "acme", queue: str = "q", dollars: int = 1) -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id=tenant,
        queue_name=queue,
        cpu_time=Decimal(10_000 * dollars),
        memory_mb_seconds=Decimal(0),
        payload_bytes=Decimal(0),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
    )


def _budget(amount: int = 100, queue: str = "") -> Budget:
    return Budget(tenant_id="acme", queue_name=queue, amount=Decimal(amount), period=BudgetPeriod("monthly"))


@pytest.fixture
def pair(tmp_path: Path, prefix: str) -> Iterator[tuple[BudgetService, BudgetService]]:
    """Two services, as two processes would be: one SQLite file, one Redis."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = BudgetService(_config(url, prefix))
    b = BudgetService(_config(url, prefix))
    yield a, b
    a.close()
    b.close()


def test_spend_recorded_by_one_process_counts_at_the_next_check_of_another(
    pair: tuple[BudgetService, BudgetService],
) -> None:
    a, b = pair
    budget = a.create_budget(_budget(amount=10))
    b.core.sync.watch_budgets()  # what its worker does every second
    assert b.check_budget_compliance("acme", "q").type == "allow"
    a.process_job_costs([_job(f"j{i}") for i in range(10)])
    action = b.check_budget_compliance("acme", "q")
    assert action.type == "block" and action.current_spend == Decimal(10)
    assert budget.id is not None
    assert a.get_budget_status(budget.id).current_spend == Decimal(10)


def test_reservations_are_shared_and_settled_exactly(pair: tuple[BudgetService, BudgetService]) -> None:
    a, b = pair
    a.create_budget(_budget(amount=3))
    b.core.sync.watch_budgets()
    first = a.admit("acme", "q", estimated_cost=Decimal(1))
    second = b.admit("acme", "q", estimated_cost=Decimal(1))
    third = a.admit("acme", "q", estimated_cost=Decimal(1))
    refused = b.admit("acme", "q", estimated_cost=Decimal("0.000000001"))
    assert all(x.allowed and x.reservation_id for x in (first, second, third))
    assert not refused.allowed and refused.reservation_id is None
    assert a.open_reservations() == 3
    assert b.release(str(second.reservation_id)) is True  # released by another process
    assert b.release(str(second.reservation_id)) is False
    assert a.admit("acme", "q", estimated_cost=Decimal(1)).allowed
    b.process_job_cost(_job("x1"), reservation_id=first.reservation_id)
    b.process_job_cost(_job("x1"), reservation_id=first.reservation_id)  # redelivered: counted once
    assert b.open_reservations() == 2
    assert a.check_budget_compliance("acme", "q").current_spend == Decimal(3)  # 1 spent + 2 held


def test_a_budget_change_in_one_process_is_seen_by_another_within_a_second(
    pair: tuple[BudgetService, BudgetService],
) -> None:
    a, b = pair
    budget = a.create_budget(_budget(amount=100))
    a.process_job_costs([_job(f"j{i}") for i in range(50)])
    deadline = time.monotonic() + 1.5
    while b.check_budget_compliance("acme", "q").type == "allow" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.check_budget_compliance("acme", "q").current_spend == Decimal(50)
    from dataclasses import replace

    a.update_budget(replace(budget, amount=Decimal(50)))
    started = time.monotonic()
    while b.check_budget_compliance("acme", "q").type != "block":
        assert time.monotonic() - started < 1.5, "the other process did not see the change within a second"
        time.sleep(0.05)


def test_flushed_redis_is_rebuilt_from_the_ledger(pair: tuple[BudgetService, BudgetService], prefix: str) -> None:
    a, b = pair
    a.create_budget(_budget(amount=100))
    b.core.sync.watch_budgets()
    a.process_job_costs([_job(f"j{i}") for i in range(40)])
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.scan_iter(match=f"{prefix}:*"))
    client.close()
    b.core.sync.tick()  # what the worker does every second
    assert b.check_budget_compliance("acme", "q").current_spend == Decimal(40)
    assert a.admit("acme", "q", estimated_cost=Decimal(60)).allowed
    assert not b.admit("acme", "q", estimated_cost=Decimal(1)).allowed


def test_drift_is_reported_and_corrected_when_it_persists(
    pair: tuple[BudgetService, BudgetService], prefix: str
) -> None:
    a, _ = pair
    budget = a.create_budget(_budget(amount=100))
    a.process_job_costs([_job(f"j{i}") for i in range(5)])
    assert budget.id is not None
    key = next(k for k in redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}:*:spend:*"))
    redis.Redis.from_url(REDIS_URL).incrby(key, 7 * 10**9)  # a lost or phantom increment: $7
    assert a.check_budget_compliance("acme", "q").current_spend == Decimal(12)
    a.core.sync.reconcile()  # seen once: could be a batch in flight, so only reported
    assert a.check_budget_compliance("acme", "q").current_spend == Decimal(12)
    a.core.sync.reconcile()  # seen twice: corrected
    assert a.check_budget_compliance("acme", "q").current_spend == Decimal(5)


@pytest.mark.parametrize(("mode", "expected"), [("fail_open", "allow"), ("fail_closed", "block"), ("local", "block")])
def test_redis_down_is_decided_by_the_failure_mode_and_nothing_is_lost(
    tmp_path: Path, prefix: str, mode: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with BudgetService(_config(url, prefix)) as setup:
        setup.create_budget(_budget(amount=10))
        setup.process_job_costs([_job(f"j{i}") for i in range(10)])  # the budget is spent
    down = Config(
        database_url=url,
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there
        redis_prefix=prefix,
        redis_failure_mode=mode,
        cost_model=ONE_DOLLAR_MODEL,
        notifications_in_background=False,
    )
    with BudgetService(down) as service:
        assert service.check_budget_compliance("acme", "q").type == expected
        assert service.check_budget_compliance("acme", "other").type == expected
        service.process_job_cost(_job("during-outage"))  # stored in the ledger all the same
        assert service.admit("acme", "q").allowed == (expected == "allow")
        warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(warnings) == 1  # logged once per outage
        # Redis comes back: the next tick rebuilds the counters from the ledger
        from jobbudget.counters.shared import RedisSharedState, connect

        service.core.hot._state = RedisSharedState(connect(REDIS_URL), prefix=prefix)
        service.core.sync.tick()
        assert any("is back" in r.getMessage() for r in caplog.records)
        assert service.check_budget_compliance("acme", "q").current_spend == Decimal(11)
    with BudgetService(_config(url, prefix)) as other:
        assert other.check_budget_compliance("acme", "q").current_spend == Decimal(11)


# -- the proof: 8 processes, one $100 budget ----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_eight_processes_admit_exactly_one_hundred_one_dollar_jobs(
    tmp_path: Path, prefix: str, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        schema = request.getfixturevalue("pg_schema")
        url = POSTGRES_URL
        extra: dict[str, Any] = {"database_schema": schema}
    else:
        url = f"sqlite:///{tmp_path / 'proof.db'}"
        extra = {}
    settings = {"database_url": url, "prefix": prefix, **extra}
    config = _config(url, prefix, **extra)
    with BudgetService(config) as setup:
        budget = setup.create_budget(_budget(amount=100))
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 3.0
    workers = [ctx.Process(target=_run_worker, args=(settings, start_at, results)) for _ in range(8)]
    for w in workers:
        w.start()
    counts = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert sum(counts) == 100, counts
    with BudgetService(config) as check:
        assert budget.id is not None
        status = check.get_budget_status(budget.id)
        assert status.current_spend == Decimal("100.000000000")
        assert str(status.current_spend) in ("100.000000000", "100")
        assert check.open_reservations() == 0
        assert check.check_budget_compliance("acme", "q").type == "block"


def _run_worker(settings: dict[str, Any], start_at: float, out: Any) -> None:
    """One of the 8 processes: admit $1 jobs and meter them at $1 until refused.
    ``settings``: database_url, database_schema, and prefix (Redis) or none (database)."""
    admitted = 0
    try:
        settings = dict(settings)
        url, prefix = settings.pop("database_url"), settings.pop("prefix", None)
        config = (
            _config(url, prefix, **settings)
            if prefix is not None
            else Config(
                database_url=url,
                shared_state="database",
                cost_model=ONE_DOLLAR_MODEL,
                notifications_in_background=False,
                **settings,
            )
        )
        service = BudgetService(config)
    except Exception:
        out.put(-1000)
        raise
    try:
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            admission = service.admit("acme", "q", estimated_cost=Decimal(1))
            if not admission.allowed:
                break
            admitted += 1
            service.process_job_cost(_job(uuid.uuid4().hex), reservation_id=admission.reservation_id)
    finally:
        service.close()
        out.put(admitted)


# -- no Redis: several processes on one database ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_without_redis_eight_processes_on_one_database_still_agree(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    settings: dict[str, Any]
    if backend == "postgres":
        settings = {"database_url": POSTGRES_URL, "database_schema": request.getfixturevalue("pg_schema")}
    else:
        settings = {"database_url": f"sqlite:///{tmp_path / 'proof.db'}"}
    config = Config(
        database_url=settings["database_url"],
        database_schema=settings.get("database_schema"),
        shared_state="database",
        cost_model=ONE_DOLLAR_MODEL,
        notifications_in_background=False,
    )
    with BudgetService(config) as setup:
        budget = setup.create_budget(_budget(amount=100))
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 3.0
    workers = [ctx.Process(target=_run_worker, args=(settings, start_at, results)) for _ in range(8)]
    for w in workers:
        w.start()
    counts = [results.get(timeout=90) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert sum(counts) == 100, counts
    with BudgetService(config) as check:
        assert budget.id is not None
        assert check.get_budget_status(budget.id).current_spend == Decimal("100.000000000")
        assert check.open_reservations() == 0
        assert check.check_budget_compliance("acme", "q").type == "block"


def test_without_redis_a_check_sees_another_process_spend_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"

    def make() -> BudgetService:
        return BudgetService(
            Config(
                database_url=url,
                shared_state="database",
                cost_model=ONE_DOLLAR_MODEL,
                notifications_in_background=False,
            )
        )

    with make() as a, make() as b:
        a.create_budget(_budget(amount=5))
        b.core.sync.watch_budgets()
        a.process_job_costs([_job(f"j{i}") for i in range(5)])
        assert b.check_budget_compliance("acme", "q").type == "block"
        held = a.admit("acme", "other", estimated_cost=Decimal(0))
        assert not held.allowed  # at the block threshold: nothing more, however small


def test_reservations_expire_by_themselves(tmp_path: Path) -> None:
    from conftest import FakeClock

    clock = FakeClock(datetime(2026, 11, 10, tzinfo=UTC))
    for shared in ("memory", "database"):
        config = Config(
            database_url=f"sqlite:///{tmp_path / (shared + '.db')}",
            shared_state=shared,
            cost_model=ONE_DOLLAR_MODEL,
            notifications_in_background=False,
        )
        with BudgetService(config, clock=clock) as service:
            service.create_budget(_budget(amount=2))
            assert service.admit("acme", "q", estimated_cost=Decimal(2), ttl_seconds=60).allowed
            assert not service.admit("acme", "q", estimated_cost=Decimal(1)).allowed
            clock.advance(seconds=61)
            assert service.open_reservations() == 0
            assert service.admit("acme", "q", estimated_cost=Decimal(1)).allowed


def test_a_new_budget_starts_from_the_jobs_already_stored_in_every_process(
    pair: tuple[BudgetService, BudgetService],
) -> None:
    a, b = pair
    a.process_job_costs([_job(f"early-{i}") for i in range(4)])  # no budget yet
    budget = a.create_budget(_budget(amount=4))
    b.core.sync.watch_budgets()
    action = b.check_budget_compliance("acme", "q")
    assert action.type == "block" and action.current_spend == Decimal(4)
    assert budget.id is not None
    assert b.get_budget_status(budget.id).current_spend == Decimal(4)  # the shared number, not b's own


def test_every_process_rolls_into_the_next_period_at_the_boundary(tmp_path: Path, prefix: str) -> None:
    from conftest import FakeClock

    clock = FakeClock(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    url = f"sqlite:///{tmp_path / 'roll.db'}"
    with BudgetService(_config(url, prefix), clock=clock) as a, BudgetService(_config(url, prefix), clock=clock) as b:
        a.create_budget(_budget(amount=3))
        b.core.sync.watch_budgets()
        a.process_job_costs([_job(f"nov-{i}") for i in range(3)])
        assert b.check_budget_compliance("acme", "q").type == "block"
        clock.advance(minutes=1)  # December
        for service in (a, b):
            action = service.check_budget_compliance("acme", "q")
            assert action.type == "allow" and action.current_spend == 0
        assert b.admit("acme", "q", estimated_cost=Decimal(3)).allowed
        assert not a.admit("acme", "q", estimated_cost=Decimal(1)).allowed
