"""One contract for every Store: memory, SQLite and PostgreSQL (via ``store_factory``).

Every test here runs three times, once per back-end, and checks the behaviour the
service relies on: exact money, idempotent ingestion, daily aggregates with exact
statistics, budget-period spend, retention and the audit trail.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from jobbudget.domain.budget import MAX_AMOUNT, Budget, EnforcementPolicy, NotificationChannel
from jobbudget.domain.cost import COMPONENTS, CostBreakdown, CostModel, JobCost, JobMetrics
from jobbudget.domain.errors import ConflictError, NotFoundError, StorageError
from jobbudget.domain.money import NANO, from_nanos
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.domain.records import AuditEntry, ForecastSnapshot, JobRecord, SpendKey
from jobbudget.ports import Store

StoreFactory = Callable[[], Store]

TENANT = "acme"
QUEUE = "q1"
T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
DAY0 = T0.date()


# -- helpers --------------------------------------------------------------------------
def spread(total: Decimal | str) -> CostBreakdown:
    """Split ``total`` (a whole number of nano-dollars) over all six components."""
    nanos = int(Decimal(total) / NANO)
    parts = [nanos // 7, nanos // 11, nanos // 13, nanos // 17, nanos // 19]
    parts.append(nanos - sum(parts))
    return CostBreakdown(*(from_nanos(p) for p in parts))


def make_record(
    job_id: str,
    total: Decimal | str = "0.001",
    *,
    breakdown: CostBreakdown | None = None,
    tenant: str = TENANT,
    queue: str = QUEUE,
    ts: datetime = T0,
    job_type: str = "batch",
    keys: Sequence[SpendKey] = (),
    usage: Sequence[Decimal | int | str] = (1, 2, 3, 4, 5),
    version: int = 1,
) -> JobRecord:
    breakdown = breakdown or spread(total)
    cpu, mem, payload, redis, net = (Decimal(str(u)) for u in usage)
    metrics = JobMetrics(
        job_id=job_id,
        tenant_id=tenant,
        queue_name=queue,
        cpu_time=cpu,
        memory_mb_seconds=mem,
        payload_bytes=payload,
        redis_ops=redis,
        network_bytes=net,
        job_type=job_type,
        timestamp=ts,
    )
    cost = JobCost(
        job_id=job_id,
        tenant_id=tenant,
        queue_name=queue,
        job_type=job_type,
        timestamp=ts,
        total_cost=breakdown.total,
        cost_breakdown=breakdown,
        cost_model_version=version,
    )
    return JobRecord(metrics=metrics, cost=cost, timestamp=ts, day=ts.date(), spend_keys=tuple(keys))


def make_budget(
    budget_id: str,
    *,
    tenant: str = TENANT,
    queue: str = "",
    amount: str = "100",
    active: bool = True,
    created: datetime = T0,
) -> Budget:
    return Budget(
        id=budget_id,
        tenant_id=tenant,
        queue_name=queue,
        amount=Decimal(amount),
        period=BudgetPeriod(type="monthly", start_date=date(2024, 1, 1), end_date=date(2024, 1, 31)),
        enforcement_policy=EnforcementPolicy(warn_only=True, throttle_factor=0.25, grace_period_hours=3),
        notifications=(NotificationChannel(type="email", target="ops@example.com", events=("block",)),),
        tags={"team": "ml", "cost-centre": "42"},
        active=active,
        created_at=created,
        updated_at=created,
        created_by="alice",
    )


def audit(kind: str = "budget_created", **kw: object) -> AuditEntry:
    return AuditEntry(at=kw.pop("at", T0), kind=kind, **kw)  # type: ignore[arg-type]


def p95(costs: Sequence[Decimal]) -> Decimal:
    ordered = sorted(costs)
    return ordered[math.ceil(Decimal("0.95") * len(ordered)) - 1]


def one_day(store: Store, day: date = DAY0, **kw: str | None) -> list:
    return store.daily_costs(tenant_id=kw.get("tenant"), queue_name=kw.get("queue"), start=day, end=day)


# -- life cycle -----------------------------------------------------------------------
def test_migrate_twice_and_ping(store: Store) -> None:
    store.migrate()
    store.ping()
    assert store.latest_cost_model() is None
    assert store.list_budgets(include_inactive=True) == []


# -- cost models ----------------------------------------------------------------------
def test_cost_model_versions(store: Store) -> None:
    first = CostModel()
    second = CostModel(
        cpu_time_weight=Decimal("0.000000123456789"),
        memory_weight=Decimal("0.00002"),
        environment_multiplier=Decimal("1.5"),
    )
    at1, at2 = T0, T0 + timedelta(hours=1, microseconds=7)
    v1 = store.add_cost_model(first, created_at=at1, created_by="config")
    assert v1.version == 1
    assert store.latest_cost_model() == v1
    v2 = store.add_cost_model(second, created_at=at2, created_by="bob")
    assert v2.version == 2

    listed = store.list_cost_models()
    assert [v.version for v in listed] == [1, 2]
    assert listed[0].model == first and listed[1].model == second
    assert listed[1].model.cpu_time_weight == Decimal("0.000000123456789")
    assert listed[1].created_at == at2 and listed[1].created_by == "bob"
    latest = store.latest_cost_model()
    assert latest is not None and latest.version == 2 and latest.model == second
    # each new version leaves an audit trace
    entries = store.list_audit(kind="cost_model")
    assert [e.details["version"] for e in entries] == [2, 1]


# -- budgets --------------------------------------------------------------------------
def test_budget_add_get_list(store: Store) -> None:
    a = make_budget("b-wide")
    b = make_budget("b-queue", queue=QUEUE, created=T0 + timedelta(seconds=1))
    c = make_budget("b-other", tenant="globex")
    off = make_budget("b-off", active=False, created=T0 + timedelta(seconds=2))
    for budget in (a, b, c, off):
        store.add_budget(budget, seed={}, audit=audit(budget_id=str(budget.id), tenant_id=budget.tenant_id))

    got = store.get_budget("b-queue")
    assert got == b
    assert got.amount == Decimal(100) and got.queue_name == QUEUE
    assert got.enforcement_policy == b.enforcement_policy
    assert got.notifications == b.notifications and got.tags == b.tags
    assert got.created_at == T0 + timedelta(seconds=1) and got.created_at.tzinfo is not None
    assert got.period == b.period and got.created_by == "alice"

    assert {x.id for x in store.list_budgets()} == {"b-wide", "b-queue", "b-other"}
    assert [x.id for x in store.list_budgets(tenant_id=TENANT)] == ["b-wide", "b-queue"]
    assert [x.id for x in store.list_budgets(tenant_id=TENANT, include_inactive=True)] == [
        "b-wide",
        "b-off",
        "b-queue",
    ]
    assert {x.id for x in store.list_budgets(include_inactive=True)} == {"b-wide", "b-queue", "b-other", "b-off"}
    assert store.list_budgets(tenant_id="nobody") == []


def test_budget_errors(store: Store) -> None:
    with pytest.raises(NotFoundError) as info:
        store.get_budget("missing")
    assert info.value.code == "BUDGET_NOT_FOUND"
    with pytest.raises(NotFoundError):
        store.save_budget(make_budget("missing"), seed={}, audit=audit("budget_updated"))
    store.add_budget(make_budget("b1"), seed={}, audit=audit())
    with pytest.raises(ConflictError):
        store.add_budget(make_budget("b1"), seed={}, audit=audit())


def test_save_budget_keeps_created_at_and_sets_seed(store: Store) -> None:
    key = SpendKey("b1", date(2024, 1, 1))
    store.add_budget(make_budget("b1"), seed={key: Decimal("1.5")}, audit=audit())
    assert store.load_spend([key]) == {key: Decimal("1.5")}

    changed = replace(
        make_budget("b1", queue=QUEUE, amount="250.5", active=False, created=T0 + timedelta(days=3)),
        updated_at=T0 + timedelta(days=3),
    )
    store.save_budget(changed, seed={key: Decimal("0.25")}, audit=audit("budget_updated", budget_id="b1"))
    got = store.get_budget("b1")
    assert got.created_at == T0  # creation time is immutable
    assert got.updated_at == T0 + timedelta(days=3)
    assert got.queue_name == QUEUE and got.amount == Decimal("250.5") and got.active is False
    assert store.list_budgets() == []
    assert [x.id for x in store.list_budgets(include_inactive=True)] == ["b1"]
    # a seed replaces the stored spend (it is a recount, not an increment)
    assert store.load_spend([key]) == {key: Decimal("0.25")}
    assert [e.kind for e in store.list_audit(tenant_id="")] == ["budget_updated", "budget_created"]


def test_budget_versions_change_with_every_budget_write(store: Store) -> None:
    assert store.budget_versions() == []
    store.add_budget(make_budget("b2"), seed={}, audit=audit())
    store.add_budget(make_budget("b1", active=False), seed={}, audit=audit())
    first = store.budget_versions()
    assert [(i, active) for i, _, active in first] == [("b1", False), ("b2", True)]
    changed = replace(store.get_budget("b2"), active=False, updated_at=T0 + timedelta(seconds=5))
    store.save_budget(changed, seed={}, audit=audit("budget_updated", budget_id="b2"))
    assert store.budget_versions() == [first[0], ("b2", T0 + timedelta(seconds=5), False)]


# -- spend ledger ---------------------------------------------------------------------
def test_load_spend_and_seeds(store: Store) -> None:
    jan, feb = SpendKey("b1", date(2024, 1, 1)), SpendKey("b1", date(2024, 2, 1))
    other = SpendKey("b2", date(2024, 1, 1))
    assert store.load_spend([]) == {}
    assert store.load_spend([jan]) == {}
    store.add_budget(make_budget("b1"), seed={jan: Decimal("10.000000001")}, audit=audit())
    store.add_budget(make_budget("b2"), seed={}, audit=audit())
    assert store.load_spend([jan, feb, other]) == {jan: Decimal("10.000000001")}

    store.record_jobs(
        [
            make_record("j1", "0.5", keys=[jan, other]),
            make_record("j2", "0.000000002", keys=[jan]),
            make_record("j3", "7", ts=datetime(2024, 2, 1, tzinfo=UTC), keys=[feb]),
        ]
    )
    assert store.load_spend([jan, feb, other]) == {
        jan: Decimal("10.500000003"),
        feb: Decimal(7),
        other: Decimal("0.5"),
    }


def test_load_spend_many_keys(store: Store) -> None:
    keys = [SpendKey(f"b{i}", date(2024, 1, 1)) for i in range(1200)]
    store.add_budget(make_budget("b0"), seed={k: Decimal(i) / 1000 for i, k in enumerate(keys)}, audit=audit())
    got = store.load_spend(keys)
    assert len(got) == 1200
    assert got[keys[1199]] == Decimal("1.199")


# -- record_jobs ----------------------------------------------------------------------
def test_record_jobs_inserted_flags_and_duplicates(store: Store) -> None:
    key = SpendKey("b1", date(2024, 1, 1))
    store.add_budget(make_budget("b1"), seed={}, audit=audit())
    first = store.record_jobs([make_record("j1", "0.003", keys=[key]), make_record("j2", "0.004", keys=[key])])
    assert first.inserted == [True, True]
    assert first.existing == {}

    # j1 again (priced differently this time), j3 new, j3 again within the batch
    second = store.record_jobs(
        [
            make_record("j1", "9.999", keys=[key], ts=T0 + timedelta(hours=1)),
            make_record("j3", "0.005", keys=[key]),
            make_record("j3", "0.006", keys=[key]),
        ]
    )
    assert second.inserted == [False, True, False]
    assert set(second.existing) == {(TENANT, "j1")}
    stored = second.existing[(TENANT, "j1")]
    assert stored.duplicate is True
    assert stored.total_cost == Decimal("0.003")
    assert stored.cost_breakdown == spread("0.003")
    assert stored.timestamp == T0
    assert stored.cost_model_version == 1

    # only inserted jobs count: 0.003 + 0.004 + 0.005
    assert store.load_spend([key]) == {key: Decimal("0.012")}
    [row] = one_day(store)
    assert row.total_jobs == 3
    assert row.total_cost == Decimal("0.012")
    assert row.max_job_cost == Decimal("0.005")
    assert row.min_job_cost == Decimal("0.003")

    # the same job id in another tenant is another job
    third = store.record_jobs([make_record("j1", "1", tenant="globex")])
    assert third.inserted == [True]
    assert store.get_job("globex", "j1").total_cost == Decimal(1)  # type: ignore[union-attr]
    assert store.get_job(TENANT, "j1").total_cost == Decimal("0.003")  # type: ignore[union-attr]
    assert store.get_job(TENANT, "nope") is None


def test_record_jobs_duplicates_only_inside_one_batch(store: Store) -> None:
    result = store.record_jobs([make_record("j1", "0.002"), make_record("j1", "0.002"), make_record("j1", "0.5")])
    assert result.inserted == [True, False, False]
    assert result.existing == {}
    [row] = one_day(store)
    assert row.total_jobs == 1 and row.total_cost == Decimal("0.002")


def test_record_jobs_all_duplicates_changes_nothing(store: Store) -> None:
    key = SpendKey("b1", date(2024, 1, 1))
    store.add_budget(make_budget("b1"), seed={}, audit=audit())
    store.record_jobs([make_record("j1", "0.002", keys=[key])])
    again = store.record_jobs([make_record("j1", "0.002", keys=[key]), make_record("j1", "0.002", keys=[key])])
    assert again.inserted == [False, False]
    assert set(again.existing) == {(TENANT, "j1")}
    assert store.load_spend([key]) == {key: Decimal("0.002")}
    assert one_day(store)[0].total_jobs == 1
    assert store.record_jobs([]).inserted == []


def test_redelivered_batch_returns_each_stored_cost(store: Store) -> None:
    # more keys than one lookup query holds (500), of two tenants, in a shuffled order
    first = [make_record(f"j{i}", f"0.{i + 1:09d}", tenant=f"t{i % 2}") for i in range(1203)]
    store.record_jobs(first)
    again = [make_record(r.metrics.job_id, "9", tenant=r.metrics.tenant_id) for r in reversed(first)]
    result = store.record_jobs(again)
    assert result.inserted == [False] * len(again)
    assert len(result.existing) == len(first)
    for r in first:
        got = result.existing[(r.metrics.tenant_id, r.metrics.job_id)]
        assert got.total_cost == r.cost.total_cost and got.duplicate
    assert sum(row.total_jobs for row in one_day(store, tenant=None)) == len(first)


def test_get_job_round_trip(store: Store) -> None:
    ts = datetime(2024, 1, 15, 23, 59, 59, 999999, tzinfo=UTC)
    store.record_jobs([make_record("j1", "0.024122656", ts=ts, job_type="ml-training", version=3)])
    got = store.get_job(TENANT, "j1")
    assert got is not None
    assert got.total_cost == Decimal("0.024122656")
    assert got.cost_breakdown == spread("0.024122656")
    assert got.timestamp == ts
    assert got.job_type == "ml-training" and got.queue_name == QUEUE and got.cost_model_version == 3


# -- daily aggregates -----------------------------------------------------------------
def test_daily_costs_exact_statistics_over_batches(store: Store) -> None:
    rng = random.Random(20240115)
    costs: list[Decimal] = []
    n = 0
    for batch_size in (1, 7, 23, 40, 2, 60):
        batch = []
        for _ in range(batch_size):
            cost = from_nanos(rng.randrange(1, 5_000_000_000))
            ts = datetime.combine(DAY0, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=rng.randrange(86400))
            batch.append(make_record(f"j{n}", cost, ts=ts))
            costs.append(cost)
            n += 1
        # a duplicate that must not be counted
        batch.append(make_record("j0", "1000"))
        store.record_jobs(batch)
        # read between batches: exact stats must be recomputed after every write
        [row] = one_day(store)
        assert row.total_jobs == len(costs)
        assert row.p95_job_cost == p95(costs)

    [row] = one_day(store, tenant=TENANT, queue=QUEUE)
    total = sum(costs, Decimal(0))
    assert row.total_jobs == len(costs) == 133
    assert row.total_cost == total
    assert row.breakdown.total == row.total_cost
    assert sum((getattr(row.breakdown, c) for c in COMPONENTS), Decimal(0)) == total
    assert row.breakdown == sum((spread(c) for c in costs[1:]), spread(costs[0]))
    assert row.avg_job_cost == (total / len(costs)).quantize(NANO, rounding=ROUND_HALF_EVEN)
    assert row.min_job_cost == min(costs)
    assert row.max_job_cost == max(costs)
    assert row.p95_job_cost == p95(costs)
    assert (row.tenant_id, row.queue_name, row.date) == (TENANT, QUEUE, DAY0)


@pytest.mark.parametrize(
    ("costs", "avg"),
    [
        (["0.000000001", "0.000000002"], "0.000000002"),  # 1.5e-9 -> 2e-9
        (["0.000000001", "0.000000004"], "0.000000002"),  # 2.5e-9 -> 2e-9 (half-even, not half-up)
        (["0.000000001", "0.000000001", "0.000000002"], "0.000000001"),  # 1.33e-9
        (["0.000000003", "0.000000004"], "0.000000004"),  # 3.5e-9 -> 4e-9
    ],
)
def test_daily_average_rounds_half_even(store: Store, costs: list[str], avg: str) -> None:
    store.record_jobs([make_record(f"j{i}", c) for i, c in enumerate(costs)])
    [row] = one_day(store)
    assert row.avg_job_cost == Decimal(avg)


def test_daily_costs_filters_and_order(store: Store) -> None:
    d1, d2, d3 = DAY0, DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)
    at = {d: datetime.combine(d, datetime.min.time(), tzinfo=UTC) for d in (d1, d2, d3)}
    store.record_jobs(
        [
            make_record("a1", "1", ts=at[d1]),
            make_record("a2", "2", ts=at[d2] - timedelta(microseconds=1)),  # last instant of d1
            make_record("a3", "3", ts=at[d2], queue="q2"),
            make_record("b1", "4", ts=at[d2], tenant="globex"),
            make_record("a4", "5", ts=at[d3]),
        ]
    )
    rows = store.daily_costs(tenant_id=None, queue_name=None, start=d1, end=d3)
    assert [(r.date, r.tenant_id, r.queue_name, r.total_cost) for r in rows] == [
        (d1, TENANT, QUEUE, Decimal(3)),
        (d2, TENANT, "q2", Decimal(3)),
        (d2, "globex", QUEUE, Decimal(4)),
        (d3, TENANT, QUEUE, Decimal(5)),
    ]
    assert [r.date for r in store.daily_costs(tenant_id=TENANT, queue_name=None, start=d2, end=d2)] == [d2]
    assert [r.total_cost for r in store.daily_costs(tenant_id=TENANT, queue_name=QUEUE, start=d1, end=d3)] == [
        Decimal(3),
        Decimal(5),
    ]
    assert store.daily_costs(tenant_id="nobody", queue_name=None, start=d1, end=d3) == []


# -- compute_spend --------------------------------------------------------------------
def test_compute_spend_window(store: Store) -> None:
    start = datetime(2024, 1, 10, 5, 0, tzinfo=UTC)
    end = datetime(2024, 1, 20, 5, 0, tzinfo=UTC)
    store.record_jobs(
        [
            make_record("before", "100", ts=start - timedelta(microseconds=1)),
            make_record("at-start", "0.000000001", ts=start),
            make_record("inside", "2", ts=datetime(2024, 1, 15, tzinfo=UTC)),
            make_record("other-q", "0.3", ts=datetime(2024, 1, 15, tzinfo=UTC), queue="q2"),
            make_record("last", "0.04", ts=end - timedelta(microseconds=1)),
            make_record("at-end", "500", ts=end),
            make_record("other-t", "7", ts=datetime(2024, 1, 15, tzinfo=UTC), tenant="globex"),
        ]
    )
    wide = store.compute_spend(tenant_id=TENANT, queue_name="", start=start, end=end)
    assert wide == Decimal("2.340000001")
    assert store.compute_spend(tenant_id=TENANT, queue_name=QUEUE, start=start, end=end) == Decimal("2.040000001")
    assert store.compute_spend(tenant_id=TENANT, queue_name="q2", start=start, end=end) == Decimal("0.3")
    assert store.compute_spend(tenant_id="globex", queue_name="", start=start, end=end) == Decimal(7)
    assert store.compute_spend(tenant_id="nobody", queue_name="", start=start, end=end) == 0
    assert store.compute_spend(tenant_id=TENANT, queue_name="", start=end, end=end + timedelta(days=1)) == 500


# -- usage stats ----------------------------------------------------------------------
def test_usage_stats(store: Store) -> None:
    store.record_jobs(
        [
            make_record("a", job_type="etl", usage=("1.5", 1024, 1, 10, 2048)),
            make_record("b", job_type="etl", usage=("2.25", 512, 1, 30, 0)),
            make_record("c", job_type="etl", tenant="globex", usage=(4, 8, 1, 2, 4)),
            make_record("d", job_type="email", usage=(100, 100, 100, 100, 100)),
        ]
    )
    mine = store.usage_stats(job_type="etl", tenant_id=TENANT)
    assert mine.count == 2
    assert (mine.cpu_time, mine.memory_mb_seconds, mine.redis_ops, mine.network_bytes) == (
        Decimal("3.75"),
        Decimal(1536),
        Decimal(40),
        Decimal(2048),
    )
    everyone = store.usage_stats(job_type="etl", tenant_id=None)
    assert everyone.count == 3
    assert everyone.cpu_time == Decimal("7.75") and everyone.network_bytes == Decimal(2052)
    none = store.usage_stats(job_type="report", tenant_id=None)
    assert none.count == 0 and none.cpu_time == 0


# -- retention ------------------------------------------------------------------------
def test_prune_keeps_daily_stats_and_spend(store: Store) -> None:
    rng = random.Random(7)
    days = [date(2024, 1, d) for d in (1, 2, 3, 4)]
    by_day: dict[date, list[Decimal]] = {d: [] for d in days}
    records = []
    for d in days:
        for i in range(21):
            cost = from_nanos(rng.randrange(1, 10**9))
            ts = datetime.combine(d, datetime.min.time(), tzinfo=UTC) + timedelta(minutes=37 * i)
            records.append(make_record(f"{d}-{i}", cost, ts=ts))
            by_day[d].append(cost)
    store.record_jobs(records[:40])
    store.record_jobs(records[40:])  # stats are stale for some days when pruning starts

    window = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 5, tzinfo=UTC))
    total = sum((sum(c) for c in by_day.values()), Decimal(0))
    assert store.compute_spend(tenant_id=TENANT, queue_name="", start=window[0], end=window[1]) == total

    result = store.prune(raw_before=date(2024, 1, 3), daily_before=date(2024, 1, 2))
    assert result.jobs_deleted == 42
    assert result.daily_rows_deleted == 1
    assert store.get_job(TENANT, "2024-01-02-0") is None
    assert store.get_job(TENANT, "2024-01-03-0") is not None

    rows = store.daily_costs(tenant_id=TENANT, queue_name=None, start=days[0], end=days[-1])
    assert [r.date for r in rows] == days[1:]
    for row in rows:
        costs = by_day[row.date]
        assert row.total_jobs == 21
        assert row.total_cost == sum(costs)
        assert row.p95_job_cost == p95(costs)  # exact even where the raw rows are gone
        assert row.min_job_cost == min(costs) and row.max_job_cost == max(costs)

    # Jan 1 lost both its raw rows and its daily row; Jan 2 comes from the daily row
    assert store.compute_spend(tenant_id=TENANT, queue_name="", start=window[0], end=window[1]) == total - sum(
        by_day[days[0]]
    )
    jan2_on = datetime(2024, 1, 2, tzinfo=UTC)
    expected = sum(by_day[days[1]]) + sum(by_day[days[2]]) + sum(by_day[days[3]])
    assert store.compute_spend(tenant_id=TENANT, queue_name=QUEUE, start=jan2_on, end=window[1]) == expected
    assert store.compute_spend(tenant_id=TENANT, queue_name="q2", start=jan2_on, end=window[1]) == 0
    jan3_on = datetime(2024, 1, 3, tzinfo=UTC)
    assert store.compute_spend(tenant_id=TENANT, queue_name="", start=jan2_on, end=jan3_on) == sum(by_day[days[1]])

    # pruning again deletes nothing more, and an earlier cutoff does not undo anything
    again = store.prune(raw_before=date(2024, 1, 2), daily_before=date(2024, 1, 1))
    assert (again.jobs_deleted, again.daily_rows_deleted) == (0, 0)
    assert store.compute_spend(tenant_id=TENANT, queue_name="", start=jan2_on, end=window[1]) == expected


def test_job_recorded_into_pruned_day_counts_once(store: Store) -> None:
    store.record_jobs([make_record("old", "1", ts=datetime(2024, 1, 2, 10, tzinfo=UTC))])
    store.prune(raw_before=date(2024, 1, 3), daily_before=date(2024, 1, 1))
    late = store.record_jobs([make_record("late", "2", ts=datetime(2024, 1, 2, 11, tzinfo=UTC))])
    assert late.inserted == [True]
    [row] = one_day(store, date(2024, 1, 2))
    assert row.total_jobs == 2 and row.total_cost == Decimal(3)
    spend = store.compute_spend(
        tenant_id=TENANT, queue_name="", start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 2, 1, tzinfo=UTC)
    )
    assert spend == Decimal(3)


# -- audit ----------------------------------------------------------------------------
def test_audit_add_and_filters(store: Store) -> None:
    entries = [
        AuditEntry(
            at=T0 + timedelta(seconds=i),
            kind="bypass" if i % 2 else "budget_updated",
            tenant_id=TENANT if i < 4 else "globex",
            queue_name=QUEUE,
            budget_id=f"b{i}",
            actor="ops",
            details={"i": i, "spend": "12.000000001", "nested": {"ok": True}},
        )
        for i in range(6)
    ]
    store.add_audit(entries[:3])
    store.add_audit(entries[3:])
    store.add_audit([])

    everything = store.list_audit()
    assert everything == list(reversed(entries))  # newest first
    assert [e.budget_id for e in store.list_audit(kind="bypass")] == ["b5", "b3", "b1"]
    assert [e.budget_id for e in store.list_audit(tenant_id=TENANT)] == ["b3", "b2", "b1", "b0"]
    assert [e.budget_id for e in store.list_audit(tenant_id=TENANT, kind="bypass")] == ["b3", "b1"]
    assert [e.budget_id for e in store.list_audit(limit=2)] == ["b5", "b4"]
    assert store.list_audit(kind="nothing") == []
    got = store.list_audit(tenant_id="globex", kind="bypass")[0]
    assert got.details == {"i": 5, "spend": "12.000000001", "nested": {"ok": True}}
    assert got.at == T0 + timedelta(seconds=5) and got.actor == "ops" and got.queue_name == QUEUE


def test_budget_writes_are_audited(store: Store) -> None:
    store.add_budget(make_budget("b1"), seed={}, audit=audit(tenant_id=TENANT, budget_id="b1", actor="alice"))
    store.save_budget(
        make_budget("b1", amount="5"), seed={}, audit=audit("budget_updated", tenant_id=TENANT, budget_id="b1")
    )
    assert [(e.kind, e.budget_id) for e in store.list_audit(tenant_id=TENANT)] == [
        ("budget_updated", "b1"),
        ("budget_created", "b1"),
    ]


# -- money ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0.000000001", "123456789.123456789", "0", "9999999.999999999", "0.1"])
def test_money_round_trips_exactly(store: Store, value: str) -> None:
    amount = Decimal(value)
    key = SpendKey("b1", date(2024, 1, 1))
    budget = make_budget("b1", amount=value) if amount > 0 else make_budget("b1")
    store.add_budget(budget, seed={key: amount}, audit=audit())
    breakdown = CostBreakdown(cpu_cost=amount, base_cost=amount)
    store.record_jobs([make_record("j1", breakdown=breakdown, keys=[key])])

    assert store.get_budget("b1").amount == budget.amount
    assert str(store.get_budget("b1").amount.normalize()) == str(budget.amount.normalize())
    job = store.get_job(TENANT, "j1")
    assert job is not None
    assert job.total_cost == 2 * amount
    assert job.cost_breakdown.cpu_cost == amount and job.cost_breakdown.base_cost == amount
    assert store.load_spend([key]) == {key: 3 * amount}
    [row] = one_day(store)
    assert row.total_cost == 2 * amount
    assert row.avg_job_cost == row.p95_job_cost == row.max_job_cost == row.min_job_cost == 2 * amount
    spend = store.compute_spend(tenant_id=TENANT, queue_name="", start=T0, end=T0 + timedelta(seconds=1))
    assert spend == 2 * amount


def test_money_sums_many_nanos_exactly(store: Store) -> None:
    key = SpendKey("b1", date(2024, 1, 1))
    store.add_budget(make_budget("b1"), seed={}, audit=audit())
    store.record_jobs([make_record(f"j{i}", "0.000000001", keys=[key]) for i in range(1000)])
    store.record_jobs([make_record("big", "123456789.123456789", keys=[key])])
    expected = Decimal("123456789.123457789")
    assert store.load_spend([key]) == {key: expected}
    assert one_day(store)[0].total_cost == expected
    assert store.compute_spend(tenant_id=TENANT, queue_name="", start=T0, end=T0 + timedelta(days=1)) == expected


def test_largest_budget_amount(store: Store) -> None:
    """The largest amount the domain accepts round-trips exactly on every backend."""
    big = make_budget("b1", amount=str(MAX_AMOUNT))
    store.add_budget(big, seed={}, audit=audit())
    assert store.get_budget("b1").amount == MAX_AMOUNT


def test_sqlite_money_overflow_is_a_clean_error(store: Store) -> None:
    """Beyond ~9.2e9 dollars SQLite's 64-bit nano-dollars overflow: a StorageError,
    nothing half-written (PostgreSQL and memory keep the amount)."""
    huge = make_budget("b1", amount="10000000000")
    if getattr(store, "dialect", None) == "sqlite":
        with pytest.raises(StorageError):
            store.add_budget(huge, seed={}, audit=audit())
        assert store.list_budgets(include_inactive=True) == []
        return
    store.add_budget(huge, seed={}, audit=audit())
    assert store.get_budget("b1").amount == Decimal("10000000000")


def test_nine_billion_round_trips(store: Store) -> None:
    amount = Decimal("9000000000.000000001")
    key = SpendKey("b1", date(2024, 1, 1))
    store.add_budget(make_budget("b1", amount=str(amount)), seed={key: amount}, audit=audit())
    assert store.get_budget("b1").amount == amount
    assert store.load_spend([key]) == {key: amount}


# -- several stores on one database --------------------------------------------------
def test_two_stores_see_each_others_writes(store_factory: StoreFactory) -> None:
    a, b = store_factory(), store_factory()
    key = SpendKey("b1", date(2024, 1, 1))
    a.add_budget(make_budget("b1"), seed={key: Decimal(1)}, audit=audit())
    assert b.get_budget("b1").amount == Decimal(100)
    assert b.load_spend([key]) == {key: Decimal(1)}

    b.record_jobs([make_record("j1", "0.5", keys=[key])])
    assert a.load_spend([key]) == {key: Decimal("1.5")}
    dup = a.record_jobs([make_record("j1", "0.7", keys=[key])])
    assert dup.inserted == [False]
    assert dup.existing[(TENANT, "j1")].total_cost == Decimal("0.5")

    a.add_cost_model(CostModel(), created_at=T0, created_by="a")
    assert b.latest_cost_model() is not None
    assert b.add_cost_model(CostModel(base_job_weight=Decimal(0)), created_at=T0, created_by="b").version == 2
    b.add_audit([audit("bypass", tenant_id=TENANT)])
    assert [e.kind for e in a.list_audit(tenant_id=TENANT)] == ["bypass"]
    b.save_budget(make_budget("b1", active=False), seed={}, audit=audit("budget_updated"))
    assert a.list_budgets() == []


def test_concurrent_writers_count_each_job_once(store_factory: StoreFactory) -> None:
    """Two stores on one database ingest the same jobs at the same time, in opposite
    orders: every job is stored once and counted once."""
    key = SpendKey("b1", date(2024, 1, 1))
    writers = [store_factory(), store_factory()]
    writers[0].add_budget(make_budget("b1"), seed={}, audit=audit())
    records = [make_record(f"j{i}", from_nanos(i + 1), queue=f"q{i % 3}", keys=[key]) for i in range(300)]
    results: list[list[bool]] = [[], []]
    errors: list[BaseException] = []

    def ingest(n: int) -> None:
        order = records if n == 0 else records[::-1]
        try:
            for i in range(0, len(order), 20):
                results[n].extend(writers[n].record_jobs(order[i : i + 20]).inserted)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(results[0]) + sum(results[1]) == 300
    total = from_nanos(300 * 301 // 2)
    assert writers[1].load_spend([key]) == {key: total}
    rows = one_day(writers[0])
    assert sum(r.total_jobs for r in rows) == 300
    assert sum((r.total_cost for r in rows), Decimal(0)) == total


# -- forecast snapshots -----------------------------------------------------------------
def snapshot(budget_id: str = "b1", start: date = date(2024, 1, 1), **kw: object) -> ForecastSnapshot:
    values: dict[str, object] = {
        "budget_id": budget_id,
        "period_start": start,
        "period_end": start + timedelta(days=30),
        "as_of": start + timedelta(days=15),
        "predicted_spend": Decimal("123.456789012"),
        "lower_80": Decimal("100.000000001"),
        "upper_80": Decimal("150"),
        "lower_95": Decimal("90"),
        "upper_95": Decimal("170"),
        "method": "test-model",
        "created_at": T0,
        **kw,
    }
    return ForecastSnapshot(**values)  # type: ignore[arg-type]


def test_forecast_snapshots_round_trip_and_close(store: Store) -> None:
    assert store.save_forecast_snapshot(snapshot()) is True
    assert store.save_forecast_snapshot(snapshot(predicted_spend=Decimal(1))) is False  # first one wins
    assert store.save_forecast_snapshot(snapshot("b2", date(2024, 2, 1)))
    assert [s.budget_id for s in store.list_forecast_snapshots()] == ["b2", "b1"]  # newest period first
    (open_b1,) = store.list_forecast_snapshots(budget_id="b1", closed=False)
    assert open_b1 == snapshot()
    assert open_b1.error is None
    store.close_forecast_snapshot(
        budget_id="b1", period_start=date(2024, 1, 1), actual_spend=Decimal("120.000000000"), closed_at=T0
    )
    (closed,) = store.list_forecast_snapshots(closed=True)
    assert closed.actual_spend == Decimal("120") and closed.closed_at == T0
    assert closed.error == (Decimal("123.456789012") - 120) / 120
    assert closed.within_80 is True
    assert [s.budget_id for s in store.list_forecast_snapshots(closed=False)] == ["b2"]
    with pytest.raises(NotFoundError):
        store.close_forecast_snapshot(
            budget_id="nope", period_start=date(2024, 1, 1), actual_spend=ZERO_D, closed_at=T0
        )


ZERO_D = Decimal(0)
