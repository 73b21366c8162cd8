"""In-process check_budget_compliance latency (target: p99 <= 50 us) with 1,000
budgets over 100 tenants in every state (allow, warn, throttle, block) and the odd
emergency bypass.  ``--tree`` puts the tenants in a 4-level tree (an organisation,
10 teams, 100 tenants, their queues) with budgets on the organisation, every team
and, selecting a label, the organisation again: each check then covers 4 to 5
budgets up the tree.  The floor is a dict lookup timed the same way, in the same run.

    .venv/bin/python benchmarks/bench_check.py [--checks N] [--tree]
"""

from __future__ import annotations

import argparse
import collections
import random
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from _common import report, summarize_latencies

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, CostModel, JobMetrics

TENANTS = 100
QUEUES = 9  # per tenant, plus one tenant-wide budget: 1,000 budgets
# target utilization of each queue budget: allow, warn, throttle, block
LEVELS = (Decimal("0.5"), Decimal("0.8"), Decimal("0.95"), Decimal("1.05"))


def build_tree(service: BudgetService) -> int:
    """uni → team-0..9 → tenant-000..099 (→ queues): 12 more budgets."""
    for t in range(TENANTS):
        service.set_parent(f"tenant-{t:03d}", f"team-{t // 10}")
    for team in range(TENANTS // 10):
        service.set_parent(f"team-{team}", "uni")
        service.create_budget(Budget(tenant_id=f"team-{team}", amount=Decimal(500_000), period=BudgetPeriod("monthly")))
    service.create_budget(Budget(tenant_id="uni", amount=Decimal(10_000_000), period=BudgetPeriod("monthly")))
    service.create_budget(
        Budget(tenant_id="uni", amount=Decimal(1_000_000), period=BudgetPeriod("monthly"), labels={"project": "llm"})
    )
    return TENANTS // 10 + 2


def floor_latencies(count: int) -> list[int]:
    """A dict lookup between two clock reads: what timing one call costs at least."""
    table = {f"tenant-{t:03d}": t for t in range(TENANTS)}
    keys = [f"tenant-{t % TENANTS:03d}" for t in range(count)]
    clock = time.perf_counter_ns
    out = []
    for key in keys:
        t0 = clock()
        table.get(key)
        out.append(clock() - t0)
    return out


def build(service: BudgetService) -> None:
    jobs = []
    for t in range(TENANTS):
        tenant = f"tenant-{t:03d}"
        service.create_budget(Budget(tenant_id=tenant, amount=Decimal(100_000), period=BudgetPeriod("monthly")))
        for q in range(QUEUES):
            service.create_budget(
                Budget(tenant_id=tenant, queue_name=f"queue-{q}", amount=Decimal(100), period=BudgetPeriod("monthly"))
            )
            # cost model: $1 per CPU second, no other component
            jobs.append(JobMetrics(f"seed-{t}-{q}", tenant, f"queue-{q}", LEVELS[(t + q) % 4] * 100, 0, 0, 0, 0))
    service.process_job_costs(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--tree", action="store_true", help="A 4-level organisation tree with budgets on every level.")
    args = parser.parse_args()
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(database_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        with BudgetService(config, clock=lambda: now) as service:
            service.update_cost_model(
                CostModel(
                    cpu_time_weight=1,
                    memory_weight=0,
                    payload_weight=0,
                    redis_ops_weight=0,
                    network_weight=0,
                    base_job_weight=0,
                )
            )
            if args.tree:
                build_tree(service)
            build(service)
            rng = random.Random(3)
            calls = [
                (
                    f"tenant-{rng.randrange(TENANTS):03d}",
                    f"queue-{rng.randrange(QUEUES)}",
                    9 if rng.random() < 0.01 else 5,
                )
                for _ in range(args.checks)
            ]
            check = service.check_budget_compliance
            labels = {"project": "llm"}
            labelled = [rng.random() < 0.1 for _ in calls] if args.tree else [False] * len(calls)
            for tenant, queue, priority in calls[:5000]:  # warm up
                check(tenant, queue, priority)
            latencies = []
            outcomes: collections.Counter[str] = collections.Counter()
            clock = time.perf_counter_ns
            start = clock()
            for (tenant, queue, priority), with_labels in zip(calls, labelled, strict=True):
                t0 = clock()
                action = check(tenant, queue, priority, labels=labels if with_labels else None)
                latencies.append(clock() - t0)
                outcomes["bypass" if action.bypass else action.type] += 1
            elapsed = (clock() - start) / 1e9
            budgets = len(service.list_budgets())
            covering = len(service.core.spend.index.covering("tenant-000", "queue-0", labels))
            floor = summarize_latencies(floor_latencies(args.checks))
    report(
        "check",
        {
            "budgets": budgets,
            "tenants": TENANTS,
            "checks": args.checks,
            "checks_per_s": round(args.checks / elapsed),
            "tree_levels": 4 if args.tree else 2,
            "budgets_per_check": covering,
            "outcomes": dict(outcomes),
            **{k: round(v, 2) for k, v in summarize_latencies(latencies).items()},
            **{f"floor_{k}": round(v, 3) for k, v in floor.items()},
        },
    )


if __name__ == "__main__":
    main()
