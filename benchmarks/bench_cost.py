"""calculate_job_cost throughput (target: >= 100,000 jobs/s).

.venv/bin/python benchmarks/bench_cost.py [--jobs N]
"""

from __future__ import annotations

import argparse
import random
import time
from decimal import Decimal

from _common import best_of, report

from jobbudget import CostCalculationEngine, JobMetrics, default_cost_model


def make_jobs(n: int, seed: int = 7) -> list[JobMetrics]:
    rng = random.Random(seed)
    return [
        JobMetrics(
            job_id=f"job-{i}",
            tenant_id=f"tenant-{i % 100}",
            queue_name=f"queue-{i % 10}",
            cpu_time=round(rng.uniform(0.01, 3600), 3),
            memory_mb_seconds=rng.randint(1, 10_000_000),
            payload_bytes=rng.randint(0, 1_000_000),
            redis_ops=rng.randint(0, 500),
            network_bytes=rng.randint(0, 100_000_000),
            job_type="batch",
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200_000)
    args = parser.parse_args()
    jobs = make_jobs(args.jobs)
    engine = CostCalculationEngine(default_cost_model())

    def run() -> float:
        start = time.perf_counter()
        for m in jobs:
            engine.calculate_job_cost(m)
        return len(jobs) / (time.perf_counter() - start)

    def validate() -> float:
        rows = [(m.job_id, m.tenant_id, m.queue_name, m.cpu_time, m.memory_mb_seconds) for m in jobs]
        start = time.perf_counter()
        for job_id, tenant, queue, cpu, mem in rows:
            JobMetrics(job_id, tenant, queue, cpu, mem, 0, 0, 0)
        return len(rows) / (time.perf_counter() - start)

    total = sum((engine.calculate_job_cost(m).total_cost for m in jobs[:1000]), Decimal(0))
    report(
        "cost",
        {
            "jobs": args.jobs,
            "calculate_job_cost_jobs_per_s": round(best_of(3, run)),
            "jobmetrics_validation_per_s": round(best_of(3, validate)),
            "checksum_first_1000": str(total),
        },
    )


if __name__ == "__main__":
    main()
