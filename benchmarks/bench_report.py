"""generate_report latency over a month of 1,000,000 jobs (target: <= 200 ms): the
report reads the daily aggregates (10 queues x 30 days), never the jobs.

One tenant, 10 queues, jobs spread evenly over June 2026 and ingested into SQLite with
process_job_costs in batches of 10,000 (about a minute for a million jobs); a
tenant-wide budget and one per queue.  The clock stands at the end of the month, so
the report is of the current period and includes the forecast when the forecasting
use case is installed.  Median and max of 20 runs after one warm-up.

    .venv/bin/python benchmarks/bench_report.py [--jobs N] [--runs N]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from _common import report

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics

TENANT = "tenant-bench"
QUEUES = 10
BATCH = 10_000
START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 6, 30, 23, 59, tzinfo=UTC)


def ingest(service: BudgetService, n: int) -> float:
    rng = random.Random(7)
    step = (END - START) / n
    began = time.perf_counter()
    for first in range(0, n, BATCH):
        batch = [
            JobMetrics(
                job_id=f"job-{seq:08d}",
                tenant_id=TENANT,
                queue_name=f"queue-{seq % QUEUES}",
                cpu_time=rng.randint(1, 600_000) / 1000,
                memory_mb_seconds=rng.randint(100, 2_000_000),
                payload_bytes=rng.randint(0, 200_000),
                redis_ops=rng.randint(0, 200),
                network_bytes=rng.randint(0, 10_000_000),
                timestamp=START + step * seq,
            )
            for seq in range(first, min(n, first + BATCH))
        ]
        service.process_job_costs(batch)
        done = first + len(batch)
        if done % (BATCH * 10) == 0 or done == n:
            rate = done / (time.perf_counter() - began)
            print(f"  ingested {done:>9,} / {n:,} jobs ({rate:,.0f} jobs/s)", flush=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    forecast = importlib.util.find_spec("jobbudget.analytics.forecasts") is not None
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(database_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        with BudgetService(config, clock=lambda: END) as service:
            monthly = BudgetPeriod("monthly")
            if forecast:
                service.create_budget(Budget(tenant_id=TENANT, amount=Decimal(1_000_000), period=monthly))
            else:
                print("  (jobbudget.analytics.forecasts is not installed: no tenant-wide budget, no forecast)")
            for q in range(QUEUES):
                service.create_budget(
                    Budget(tenant_id=TENANT, queue_name=f"queue-{q}", amount=Decimal(100_000), period=monthly)
                )
            print(f"ingesting {args.jobs:,} jobs into SQLite ...", flush=True)
            ingest_s = ingest(service, args.jobs)
            period = BudgetPeriod("monthly")
            result = service.generate_report(TENANT, period)  # warm-up
            timings = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                result = service.generate_report(TENANT, period)
                timings.append((time.perf_counter() - t0) * 1000)
            daily_rows = sum(len(d.queues) for d in result.daily)
            assert result.total_jobs == args.jobs, (result.total_jobs, args.jobs)
            assert sum((c for _, c in result.queue_breakdown), Decimal(0)) == result.total_spend
            t0 = time.perf_counter()
            service.get_daily_costs(TENANT, start=START.date(), end=END.date(), exact_stats=False)
            read_ms = (time.perf_counter() - t0) * 1000
    report(
        "report",
        {
            "backend": "sqlite",
            "jobs": args.jobs,
            "queues": QUEUES,
            "daily_rows": daily_rows,
            "budgets": QUEUES + (1 if forecast else 0),
            "forecast": result.forecast is not None,
            "runs": args.runs,
            "median_ms": round(statistics.median(timings), 2),
            "max_ms": round(max(timings), 2),
            "daily_read_ms": round(read_ms, 2),
            "ingest_s": round(ingest_s, 1),
            "total_spend": str(result.total_spend),
            "target_ms": 200,
        },
    )


if __name__ == "__main__":
    main()
