"""Budgets for platforms, on every store: an organisation → team → tenant tree with
budgets on any node, budgets that select job labels, refunds (by hand and by exit
state), corrections, temporary raises and rollover.  Money stays exact: every
budget's spend is its jobs plus its adjustments, and the daily aggregates stay the
jobs' own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import FakeClock
from jobbudget.domain.budget import Budget, EnforcementPolicy
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.errors import NotFoundError, ValidationError
from jobbudget.domain.hierarchy import MAX_DEPTH, TenantTree, TreeNode
from jobbudget.domain.periods import BudgetPeriod

D = Decimal
#: $1 per job exactly: 10,000 CPU seconds at $0.0001, no base cost
ONE_DOLLAR = {"cpu_time_weight": "0.0001", "base_job_weight": "0"}
MONTHLY = BudgetPeriod(type="monthly")


@pytest.fixture
def service(service_factory: Callable[..., Any]) -> Any:
    return service_factory(cost_model=ONE_DOLLAR)


def job(job_id: str, tenant: str = "acme", queue: str = "q", dollars: int = 1, **extra: Any) -> JobMetrics:
    return JobMetrics(
        job_id=job_id, tenant_id=tenant, queue_name=queue, cpu_time=D(10_000 * dollars), memory_mb_seconds=D(0),
        payload_bytes=D(0), redis_ops=D(0), network_bytes=D(0), **extra,
    )  # fmt: skip


def budget(service: Any, node: str, amount: int, **extra: Any) -> Budget:
    return service.create_budget(Budget(tenant_id=node, amount=D(amount), period=MONTHLY, **extra))  # type: ignore[no-any-return]


def spent(service: Any, b: Budget) -> Decimal:
    return service.get_budget_status(b.id).current_spend  # type: ignore[no-any-return]


def tree(service: Any) -> None:
    """uni → research → {acme, beta}; uni → ops → gamma (4 levels with the queue)."""
    for node, parent in (("acme", "research"), ("beta", "research"), ("research", "uni"), ("gamma", "ops"),
                         ("ops", "uni")):  # fmt: skip
        service.set_parent(node, parent, actor="ops@example.com")


# -- the tree ----------------------------------------------------------------------------
def test_the_tree_is_pure_and_refuses_cycles_and_depth() -> None:
    t = TenantTree.of([TreeNode("acme", "research"), TreeNode("research", "uni")])
    assert t.lineage("acme") == ("acme", "research", "uni")
    assert t.subtree("uni") == {"uni", "research", "acme"} and t.subtree("acme") == {"acme"}
    assert t.within("uni", "acme") and not t.within("acme", "uni")
    with pytest.raises(ValidationError) as err:
        t.moved("uni", "acme")
    assert err.value.field == "parent" and "cycle" in str(err.value)
    deep = TenantTree()
    for level in range(MAX_DEPTH):
        deep = deep.moved(f"n{level}", f"n{level + 1}")
    with pytest.raises(ValidationError, match="levels deep"):
        deep.moved(f"n{MAX_DEPTH}", "one-too-many")
    assert t.moved("acme", "").lineage("acme") == ("acme",)


def test_an_organisation_budget_counts_every_tenant_below_it(service: Any) -> None:
    tree(service)
    org = budget(service, "uni", 3)
    team = budget(service, "research", 100)
    service.process_job_costs([job("a1"), job("b1", "beta"), job("g1", "gamma")])
    assert spent(service, org) == 3 and spent(service, team) == 2
    # no tenant budget anywhere, yet the organisation's blocks
    action = service.check_budget_compliance("gamma", "q")
    assert action.type == "block" and action.budget_id == org.id
    assert service.check_budget_compliance("outsider", "q").type == "allow"
    audit = service.list_audit(kind="tree_changed")
    assert {e.tenant_id for e in audit} >= {"acme", "research"} and audit[0].actor == "ops@example.com"


def test_the_strictest_budget_of_the_lineage_wins(service: Any) -> None:
    tree(service)
    budget(service, "uni", 1000)
    tight = service.create_budget(Budget(tenant_id="research", queue_name="gpu", amount=D(2), period=MONTHLY))
    service.process_job_costs([job("a1", queue="gpu"), job("b1", "beta", queue="gpu")])
    assert service.check_budget_compliance("acme", "gpu").budget_id == tight.id
    assert service.check_budget_compliance("acme", "gpu").type == "block"
    assert service.check_budget_compliance("acme", "cpu").type == "allow"


def test_a_new_group_budget_starts_with_its_tenants_spend_and_moves_recount(service: Any) -> None:
    service.process_job_costs([job("a1"), job("a2"), job("b1", "beta")])
    service.set_parent("acme", "research")
    team = budget(service, "research", 10)
    assert spent(service, team) == 2
    service.set_parent("beta", "research")  # beta's spend this period now counts for research
    assert spent(service, team) == 3
    service.set_parent("acme", "")
    assert spent(service, team) == 1
    assert service.tenant_tree().lineage("beta") == ("beta", "research")


# -- labels ------------------------------------------------------------------------------
def test_a_label_budget_counts_only_jobs_with_its_labels(service: Any) -> None:
    llm = budget(service, "acme", 2, labels={"project": "llm"})
    service.process_job_costs([job("a1", labels={"project": "llm", "team": "x"}), job("a2"),
                               job("a3", labels={"project": "vision"})])  # fmt: skip
    assert spent(service, llm) == 1
    service.process_job_cost(job("a4", labels={"project": "llm"}))
    assert service.check_budget_compliance("acme", "q", labels={"project": "llm"}).type == "block"
    assert service.check_budget_compliance("acme", "q").type == "allow"  # other work goes on
    assert service.admit("acme", "q", labels={"project": "llm"}, estimated_cost=1).action.type == "block"
    # a label budget made later counts the labelled jobs already there
    again = budget(service, "acme", 5, labels={"project": "llm"})
    assert spent(service, again) == 2


def test_bad_labels_are_refused_naming_the_field(service: Any) -> None:
    with pytest.raises(ValidationError) as err:
        budget(service, "acme", 1, labels={"bad key!": "x"})
    assert err.value.field == "labels.name"
    with pytest.raises(ValidationError) as err:
        service.check_budget_compliance("acme", "q", labels={"project": ""})
    assert err.value.field == "labels.project"


# -- refunds and corrections ---------------------------------------------------------------
def test_a_refund_returns_the_cost_once_and_is_audited(service: Any, clock: FakeClock) -> None:
    tree(service)
    org, own = budget(service, "uni", 10), budget(service, "acme", 10)
    service.process_job_costs([job("a1", dollars=3), job("a2")])
    refund = service.refund_job("acme", "a1", reason="node n12 failed", actor="ops")
    assert refund is not None and refund.amount == -3 and refund.kind == "refund"
    assert service.refund_job("acme", "a1", reason="again") is None  # once
    assert spent(service, org) == 1 and spent(service, own) == 1
    day = clock.now.date()
    (row,) = service.get_daily_costs("acme", start=day, end=day)
    assert row.total_cost == 4  # the jobs' own aggregate: corrections are shown apart
    assert [a.amount for a in service.list_adjustments("uni", start=day, end=day)] == [-3]
    (entry,) = service.list_audit(kind="refund")
    assert entry.actor == "ops" and entry.details["amount"] == "-3.000000000" and entry.details["job_id"] == "a1"
    with pytest.raises(NotFoundError):
        service.refund_job("acme", "missing", reason="x")
    # a budget stored again is recounted with its refunds
    service.update_budget(_with_amount(own, 20))
    assert spent(service, own) == 1


def _with_amount(b: Budget, amount: int) -> Budget:
    from dataclasses import replace

    return replace(b, amount=D(amount))


def test_jobs_that_failed_for_the_platform_are_refunded_automatically(service: Any) -> None:
    own = budget(service, "acme", 10)
    service.process_job_costs([
        job("ok", exit_state="COMPLETED"), job("user-bug", exit_state="FAILED"),
        job("node", dollars=2, exit_state="NODE_FAIL"), job("preempted", exit_state="preempted"),
    ])  # fmt: skip
    assert spent(service, own) == 2  # COMPLETED and FAILED are charged
    service.process_job_cost(job("node", dollars=2, exit_state="NODE_FAIL"))  # a redelivery: nothing more
    assert spent(service, own) == 2
    service.process_job_cost(job("node-retry", dollars=2, exit_state="COMPLETED"))  # the retry is charged
    assert spent(service, own) == 4
    kinds = {(e.kind, e.details["reason"]) for e in service.list_audit(kind="refund")}
    assert kinds == {
        ("refund", "exit state NODE_FAIL (refund policy)"),
        ("refund", "exit state PREEMPTED (refund policy)"),
    }


def test_corrections_land_in_the_period_they_name(service: Any, clock: FakeClock) -> None:
    since = (clock.now.replace(day=1) - timedelta(days=40)).date().replace(day=1)
    own = service.create_budget(
        Budget(tenant_id="acme", amount=D(10), period=BudgetPeriod(type="monthly", start_date=since, recurring=True))
    )
    service.process_job_cost(job("a1", dollars=4))
    last_month = clock.now.replace(day=1) - timedelta(days=3)
    late = service.adjust_spend("acme", "2.5", reason="late GPU invoice", at=last_month, actor="finance")
    credit = service.adjust_spend("acme", "-1.25", reason="SLA credit", actor="finance")
    assert (late.kind, credit.kind) == ("debit", "credit")
    assert spent(service, own) == D("2.75")  # this period: 4 − 1.25; the debit counts last month
    (key,) = late.keys
    assert key.period_start == last_month.date().replace(day=1)
    assert service.store.load_spend([key])[key] == D("2.5")
    for amount, reason, field in (
        (0, "x", "amount"),
        (1, "", "reason"),
        ("1e-10", "x", "amount"),
        ("abc", "x", "amount"),
    ):
        with pytest.raises(ValidationError) as err:
            service.adjust_spend("acme", amount, reason=reason)
        assert err.value.field == field


# -- raises and rollover --------------------------------------------------------------------
def test_a_raise_lifts_the_amount_until_it_expires(service: Any, clock: FakeClock) -> None:
    own = budget(service, "acme", 2)
    service.process_job_costs([job("a1"), job("a2")])
    assert service.check_budget_compliance("acme", "q").type == "block"
    raise_ = service.raise_budget(
        own.id, 3, expires_at=clock.now + timedelta(hours=2), approver="cfo@example.com", reason="launch week"
    )
    assert service.check_budget_compliance("acme", "q").type == "allow"
    assert service.get_budget_status(own.id).amount == 5
    assert service.get_budget_status(own.id).budget.amount == 2  # as stored: an editor never saves the raise
    assert service.list_raises(own.id) == [raise_]
    (entry,) = service.list_audit(kind="budget_raised")
    assert entry.details["approver"] == "cfo@example.com" and entry.details["amount"] == "3"
    clock.advance(hours=3)
    assert service.check_budget_compliance("acme", "q").type == "block"
    assert service.get_budget_status(own.id).amount == 2
    with pytest.raises(ValidationError) as err:
        service.raise_budget(own.id, 1, expires_at=clock.now - timedelta(hours=1), approver="x", reason="y")
    assert err.value.field == "expires_at"
    with pytest.raises(ValidationError) as err:
        service.raise_budget(own.id, 1, expires_at=clock.now + timedelta(hours=1), approver="", reason="y")
    assert err.value.field == "approver"


@pytest.mark.parametrize(
    ("mode", "spent_last_month", "amount_now"),
    [("unused", 6, D(14)), ("unused", 12, D(10)), ("overage", 12, D(8)), ("both", 3, D(15)), ("none", 3, D(10))],
)
def test_rollover_carries_the_previous_period(
    service_factory: Callable[..., Any], clock: FakeClock, mode: str, spent_last_month: int, amount_now: Decimal
) -> None:
    service = service_factory(cost_model=ONE_DOLLAR)
    first_of_month = clock.now.replace(day=1, hour=0)
    clock.now = first_of_month - timedelta(days=10)
    policy = EnforcementPolicy(carry_over=mode, carry_over_cap=D("0.5"))
    own = service.create_budget(
        Budget(tenant_id="acme", amount=D(10), period=BudgetPeriod(type="monthly"), enforcement_policy=policy)
    )
    service.process_job_cost(job("old", dollars=spent_last_month))
    clock.now = first_of_month + timedelta(days=2)
    status = service.get_budget_status(own.id)
    assert status.amount == amount_now  # at most half the amount either way
    assert status.carried == amount_now - 10 and status.budget.amount == 10
    assert service.get_budget(own.id).amount == 10  # as stored


# -- shared by every process (Redis) --------------------------------------------------------
def test_an_organisation_budget_is_one_counter_across_processes_and_tenants(pg_schema: str, clock: FakeClock) -> None:
    from conftest import POSTGRES_URL
    from jobbudget.config import Config
    from jobbudget.service import BudgetService
    from test_shared_state import REDIS_URL, _redis_or_skip  # the Redis helpers

    _redis_or_skip()
    import uuid

    prefix = f"jbt{uuid.uuid4().hex[:10]}"
    config = Config(
        database_url=POSTGRES_URL, database_schema=pg_schema, redis_url=REDIS_URL, redis_prefix=prefix,
        cost_model=ONE_DOLLAR, notifications_in_background=False,
    )  # fmt: skip
    one, two = BudgetService(config, clock=clock), BudgetService(config, clock=clock)
    try:
        tree(one)
        org = budget(one, "uni", 3)
        two.core.sync.watch_budgets()
        two.core.sync.reload()
        one.process_job_cost(job("a1"))
        two.process_job_cost(job("b1", "beta"))
        # both processes see the organisation's spend of both tenants
        assert two.check_budget_compliance("gamma", "q").current_spend == 2
        assert one.admit("gamma", "q", estimated_cost=1).action.type != "block"
        assert two.admit("acme", "q", estimated_cost=1).action.type == "block"  # 2 + 1 held + 1 > 3
        two.refund_job("beta", "b1", reason="preempted")
        assert one.check_budget_compliance("acme", "q").current_spend == 2  # 1 + the open hold of 1
        assert spent(one, org) == 1
    finally:
        one.close()
        two.close()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def test_daily_statistics_and_dates_are_untouched(service: Any, clock: FakeClock) -> None:
    service.process_job_costs([job("a1"), job("a2", dollars=2)])
    service.refund_job("acme", "a2", reason="x")
    day = clock.now.date()
    assert service.list_adjustments(start=day, end=day)[0].day == day
    assert service.list_adjustments("nobody", start=day, end=day) == []
    assert service.list_adjustments(start=date(2000, 1, 1), end=date(2000, 1, 2)) == []
    assert clock.now.tzinfo is UTC


# -- what a review found ------------------------------------------------------------------
def test_a_refund_lost_between_the_commit_and_the_refund_is_made_on_redelivery(service: Any) -> None:
    own = budget(service, "acme", 10)
    platform = service.core.platform
    real = service.store.add_adjustments
    calls = {"n": 0}

    def flaky(items: Any, *, audit: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            from jobbudget.domain.errors import StorageUnavailableError

            raise StorageUnavailableError("connection dropped")
        return real(items, audit=audit)

    service.store.add_adjustments = flaky
    try:
        with pytest.raises(Exception, match="connection dropped"):
            service.process_job_cost(job("nf", exit_state="NODE_FAIL"))
        again = service.process_job_cost(job("nf", exit_state="NODE_FAIL"))  # the queue redelivers
    finally:
        service.store.add_adjustments = real
    assert again.duplicate and spent(service, own) == 0
    assert platform.refund_failed([], []) == 0


def test_a_rescoped_budget_keeps_only_the_refunds_of_its_scope(service: Any) -> None:
    own = service.create_budget(Budget(tenant_id="acme", queue_name="q", amount=D(10), period=MONTHLY))
    service.process_job_cost(job("a1"))
    service.refund_job("acme", "a1", reason="x")
    assert spent(service, own) == 0
    from dataclasses import replace

    moved = service.update_budget(replace(service.get_budget(own.id), queue_name="gpu"))
    assert spent(service, moved) == 0  # no gpu jobs, and q's refund is not gpu's


def test_a_label_budget_made_after_a_refund_counts_the_refund(service: Any) -> None:
    service.process_job_costs([job("l1", labels={"project": "llm"}), job("l2", labels={"project": "llm"})])
    service.refund_job("acme", "l1", reason="node failure")
    llm = budget(service, "acme", 10, labels={"project": "llm"})
    assert spent(service, llm) == 1
    other = budget(service, "acme", 10, labels={"project": "vision"})
    assert spent(service, other) == 0


def test_an_absurd_amount_is_refused_in_words(service: Any) -> None:
    with pytest.raises(ValidationError) as err:
        service.adjust_spend("acme", "-1e999999999", reason="x")
    assert err.value.field == "amount" and "1000000000" in str(err.value) and "E+" not in err.value.reason


def test_a_correction_cannot_be_dated_in_the_future(service: Any, clock: FakeClock) -> None:
    with pytest.raises(ValidationError) as err:
        service.adjust_spend("acme", "5", reason="x", at=clock.now + timedelta(days=3))
    assert err.value.field == "at" and "future" in err.value.reason
