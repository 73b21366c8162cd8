"""A child process for ``test_fault_kill.py``: stores a fixed plan of job batches
and acknowledges each batch only after ``process_job_costs`` has returned.

Usage: ``python fault_ingester.py DATABASE_URL SCHEMA ACK_FILE START_BATCH [JOURNAL]``
(SCHEMA ``-`` for none; JOURNAL: a metering journal folder, with Redis, jobs metered
one at a time).  It prints ``ready`` once the service is open, stores the
batches from START_BATCH to the end, appending one JSON line per returned batch to
ACK_FILE (written with one ``write`` and fsynced), and prints ``done``.  The parent
kills it with SIGKILL at random moments; a half-written last line means "not
acknowledged".  Imports stay lean: a child starts about 20 times per backend.
"""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from jobbudget import BudgetService, Config
from jobbudget.domain.cost import JobMetrics

#: the service's clock: every planned job finished in January 2024, before this
NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
BATCHES = 40
BATCH_SIZE = 80
TENANTS = ("t0", "t1", "t2")
QUEUES = ("q0", "q1")
DAYS = 6


def job(n: int) -> JobMetrics:
    """Job number ``n`` of the plan: always the same metrics (so the same cost)."""
    rng = random.Random(n)
    return JobMetrics(
        job_id=f"job-{n:05d}",
        tenant_id=TENANTS[n % len(TENANTS)],
        queue_name=QUEUES[(n // 3) % len(QUEUES)],
        cpu_time=Decimal(rng.randint(1, 10**6)) / 1000,
        memory_mb_seconds=Decimal(rng.randint(0, 10**7)) / 100,
        payload_bytes=Decimal(rng.randint(0, 10**6)),
        redis_ops=Decimal(rng.randint(0, 5000)),
        network_bytes=Decimal(rng.randint(0, 10**8)),
        job_type=("etl", "render", "")[n % 3],
        timestamp=NOW - timedelta(days=n % DAYS, seconds=n % 86_000 + 60),
    )


def batch(b: int) -> list[JobMetrics]:
    """Batch ``b``: its own new jobs, and in most batches some jobs of earlier batches
    again (a queue redelivering), sometimes twice within the batch."""
    numbers = list(range(b * BATCH_SIZE, (b + 1) * BATCH_SIZE))
    rng = random.Random(1_000_003 * (b + 1))
    if b >= 2 and b % 3 != 0:
        numbers += rng.sample(range((b - 2) * BATCH_SIZE, b * BATCH_SIZE), 15)
    if b % 5 == 4:
        numbers += numbers[:3]  # the same job twice in one batch
    rng.shuffle(numbers)
    return [job(n) for n in numbers]


def planned_jobs() -> set[int]:
    return set(range(BATCHES * BATCH_SIZE))


def config_of(url: str, schema: str | None, journal: str | None) -> Config:
    """With ``journal`` (a folder): Redis (prefix: the folder's name) and the metering
    journal; jobs are then metered one at a time, as a fleet's workers do."""
    if journal is None:
        return Config(database_url=url, database_schema=schema)
    return Config(
        database_url=url,
        database_schema=schema,
        redis_url=REDIS_URL,
        redis_prefix=os.path.basename(journal),
        metering_journal=journal,
    )


REDIS_URL = "redis://127.0.0.1:6379/0"


def main(url: str, schema: str, ack_path: str, start: int, journal: str | None = None) -> None:
    config = config_of(url, None if schema == "-" else schema, journal)
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with BudgetService(config, clock=lambda: NOW) as service:
        print("ready", flush=True)
        for b in range(start, BATCHES):
            if journal is None:
                costs = service.process_job_costs(batch(b))
            else:
                costs = [service.process_job_cost(m) for m in batch(b)]
            line = {"b": b, "jobs": [[c.tenant_id, c.job_id, str(c.total_cost), c.duplicate] for c in costs]}
            os.write(fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
            os.fsync(fd)
    os.close(fd)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
