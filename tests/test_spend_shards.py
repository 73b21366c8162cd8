"""Metering at fleet scale on PostgreSQL (issue 18): spend and daily rows in shards
(concurrent writers do not queue on one row), a small batch committed in one
statement, alerts that fire exactly once however the shards race, and Redis holds
released by an operator who knows only the id."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from conftest import POSTGRES_URL
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.domain.records import SpendKey
from jobbudget.storage.sql.store import SqlStore
from test_shared_state import REDIS_URL
from test_shared_state import prefix as prefix  # the fixture

NOW = datetime.now(UTC)


def _service(schema: str, **extra: object) -> BudgetService:
    return BudgetService(
        Config(database_url=POSTGRES_URL, database_schema=schema, notifications_in_background=False, **extra)
    )


def _job(job_id: str, cpu: str = "10", tenant: str = "acme", queue: str = "q") -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id=tenant,
        queue_name=queue,
        cpu_time=Decimal(cpu),
        memory_mb_seconds=0,
        payload_bytes=0,
        redis_ops=0,
        network_bytes=0,
    )


def _other_shard(schema: str, sql: str, params: dict[str, object]) -> int:
    """Write as another connection's shard would: one that no row of this test's budget
    or tenant uses (the schema holds the rows of the file's other tests too: picking
    "the first row's shard + 1" could be this job's own shard, 1 run in many); returns it."""
    engine = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as conn:
        used = {int(r) for (r,) in conn.execute(sa.text("SELECT shard FROM budget_spend"))}
        used |= {int(r) for (r,) in conn.execute(sa.text("SELECT shard FROM daily_costs WHERE tenant_id = 'acme'"))}
        other = next(shard for shard in range(16) if shard not in used)
        conn.execute(sa.text(sql), {**params, "shard": other})
    engine.dispose()
    return other


def _spend_row_written(schema: str, budget_id: str, timeout: float = 10.0) -> None:
    """Wait for the job's own spend row (CI once saw the sum without it: the other
    shard's row was then all there was)."""
    import time

    engine = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT count(*) FROM budget_spend WHERE budget_id = :b"), {"b": budget_id})
                if rows.scalar():
                    return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"no spend row for budget {budget_id} within {timeout} s")


def test_every_reader_adds_up_the_shards(pg_schema: str) -> None:
    with _service(pg_schema) as service:
        budget = service.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
        assert budget.id is not None
        first = service.process_job_cost(_job("j1"))
        status = service.get_budget_status(budget.id)
        start = status.period_start
        store = service.core.store
        assert isinstance(store, SqlStore)
        row = {"b": budget.id, "p": start}
        _spend_row_written(pg_schema, budget.id)
        _other_shard(pg_schema, "DELETE FROM budget_spend WHERE shard = :shard", {})
        _other_shard(
            pg_schema,
            "INSERT INTO budget_spend (budget_id, period_start, shard, spend, jobs) VALUES (:b, :p, :shard, 1.25, 1)",
            row,
        )
        day = {"t": "acme", "d": NOW.date(), "now": NOW}
        _other_shard(
            pg_schema,
            "INSERT INTO daily_costs (tenant_id, queue_name, date, shard, total_jobs, total_cost, cpu_cost, "
            "memory_cost, payload_cost, redis_cost, network_cost, base_cost, min_job_cost, max_job_cost, "
            "avg_job_cost, p95_job_cost, stats_stale, updated_at) VALUES (:t, 'q', :d, :shard, 1, 1.25, 1.25, 0, 0, 0, "
            "0, 0, 1.25, 1.25, 0, 0, true, :now) ON CONFLICT DO NOTHING",
            day,
        )
        key = SpendKey(budget.id, start)
        assert store.load_spend([key])[key] == first.total_cost + Decimal("1.25")
        (daily,) = store.daily_costs(tenant_id="acme", queue_name="q", start=NOW.date(), end=NOW.date())
        assert daily.total_jobs == 2 and daily.total_cost == first.total_cost + Decimal("1.25")
        assert daily.min_job_cost == min(first.total_cost, Decimal("1.25"))
        assert daily.max_job_cost == max(first.total_cost, Decimal("1.25"))
        assert store.spend_totals([key], now=NOW) == [(first.total_cost + Decimal("1.25"), Decimal(0))]
        # a recount (budget saved with its spend recounted) leaves one shard holding it all
        store.save_budget(budget, seed={key: Decimal(7)}, audit=_audit())
        assert store.load_spend([key])[key] == Decimal(7)


def _audit() -> object:
    from jobbudget.domain.records import AuditEntry

    return AuditEntry(at=NOW, kind="budget_update", actor="test")


def test_concurrent_single_jobs_are_exact_and_fire_each_alert_once(pg_schema: str) -> None:
    """Eight threads, each with its own service (its own connections, so several
    shards), meter single jobs that take the budget past 50 % and 80 %: spend is the
    sum of the costs and each threshold alert exists once."""
    with _service(pg_schema) as setup:
        unit = setup.process_job_cost(_job("probe", tenant="probe")).total_cost
        budget = setup.create_budget(Budget(tenant_id="acme", amount=unit * 100, period=BudgetPeriod("monthly")))
        assert budget.id is not None
    services = [_service(pg_schema) for _ in range(8)]
    costs: list[Decimal] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(12):
            cost = services[n].process_job_cost(_job(f"t{n}-{i}"))
            with lock:
                costs.append(cost.total_cost)

    try:
        for s in services:
            s.start()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        services[0].core.planner.sweep()  # what the background does every second
    finally:
        for s in services:
            s.close()
    with _service(pg_schema) as check:
        assert check.get_budget_status(budget.id).current_spend == sum(costs) == unit * 96
        kinds = sorted(a.event.type for a in check.list_alerts("acme"))
    assert kinds == ["throttle", "warning"], kinds  # 96 %: each once
    assert len(kinds) == len(set(kinds)), kinds


def test_the_sweep_writes_an_alert_the_ledger_calls_for(pg_schema: str) -> None:
    """A crossing no batch wrote (a crash between the commit and the alert, or two
    shards that crossed together): the sweep writes it, once."""
    with _service(pg_schema) as service:
        unit = service.process_job_cost(_job("probe", tenant="probe")).total_cost
        budget = service.create_budget(Budget(tenant_id="acme", amount=unit * 10, period=BudgetPeriod("monthly")))
        assert budget.id is not None
        start = service.get_budget_status(budget.id).period_start
        _other_shard(
            pg_schema,
            "INSERT INTO budget_spend (budget_id, period_start, shard, spend, jobs) VALUES (:b, :p, :shard, :s, 9) "
            "ON CONFLICT (budget_id, period_start, shard) DO UPDATE SET spend = excluded.spend",
            {"b": budget.id, "p": start, "s": unit * 9},
        )
        service.core.planner.sweep()  # (the background's own sweep may have been first)
        service.core.planner.sweep()
        assert sorted(a.event.type for a in service.list_alerts("acme")) == ["throttle", "warning"]  # 90 %, once each


def test_a_duplicate_in_the_one_statement_path_is_reported_with_its_first_cost(pg_schema: str) -> None:
    with _service(pg_schema) as service:
        first = service.process_job_cost(_job("dup", cpu="3"))
        again = service.process_job_cost(_job("dup", cpu="3"))
        assert again.duplicate and again.total_cost == first.total_cost
        both = service.process_job_costs([_job("x"), _job("x")])
        assert not both[0].duplicate and both[1].duplicate


def test_no_notify_with_a_shared_state(pg_schema: str) -> None:
    """A process with a shared state does not announce commits (a NOTIFY serialises
    every committing transaction on PostgreSQL); one without does."""
    with _service(pg_schema, shared_state="database") as shared:
        assert shared.core.store.announce_changes is False
    with _service(pg_schema, shared_state="memory") as local:
        assert local.core.store.announce_changes is True


def test_an_operator_releases_a_redis_hold_by_id_alone(pg_schema: str, prefix: str) -> None:
    with _service(pg_schema, redis_url=REDIS_URL, redis_prefix=prefix) as service:
        service.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
        held = service.admit("acme", "q", estimated_cost=Decimal(5))
        assert held.reservation_id is not None and service.open_reservations() == 1
        assert service.release(held.reservation_id, tenant_id="other") is False  # another tenant's: nothing
        assert service.release(held.reservation_id) is True  # the operator: found by id alone
        assert service.open_reservations() == 0
        assert service.release(held.reservation_id) is False
