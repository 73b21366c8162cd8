"""process_job_costs throughput in batches of 1,000 with 500 budgets to keep current,
duplicates included, on SQLite and PostgreSQL, against raw inserts of the same rows
measured in the same run (target: within 4x); and the storage each stored job takes.

    .venv/bin/python benchmarks/bench_ingest.py [--jobs N] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from _common import POSTGRES_URL, report

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics

TENANTS = 50
QUEUES = 9  # 50 tenant-wide + 450 queue budgets = 500
BATCH = 1000
DUPLICATE_SHARE = 0.05  # redelivered jobs from the previous batch


def make_batches(n: int, start: datetime) -> list[list[JobMetrics]]:
    rng = random.Random(11)
    batches: list[list[JobMetrics]] = []
    previous: list[JobMetrics] = []
    seq = 0
    while seq < n:
        batch: list[JobMetrics] = []
        for _ in range(BATCH):
            if previous and rng.random() < DUPLICATE_SHARE:
                batch.append(rng.choice(previous))
                continue
            t = rng.randrange(TENANTS)
            batch.append(
                JobMetrics(
                    job_id=f"job-{seq:09d}",
                    tenant_id=f"tenant-{t:02d}",
                    queue_name=f"queue-{rng.randrange(QUEUES + 1)}",
                    cpu_time=round(rng.uniform(0.1, 600), 3),
                    memory_mb_seconds=rng.randint(100, 2_000_000),
                    payload_bytes=rng.randint(0, 200_000),
                    redis_ops=rng.randint(0, 200),
                    network_bytes=rng.randint(0, 10_000_000),
                    job_type="batch",
                    timestamp=start + timedelta(seconds=seq * 0.5),
                )
            )
            seq += 1
        batches.append(batch)
        previous = batch
    return batches


def run(config: Config, batches: list[list[JobMetrics]], now: datetime) -> dict[str, float]:
    with BudgetService(config, clock=lambda: now) as service:
        for t in range(TENANTS):
            tenant = f"tenant-{t:02d}"
            service.create_budget(Budget(tenant_id=tenant, amount=Decimal(1_000_000), period=BudgetPeriod("monthly")))
            for q in range(QUEUES):
                service.create_budget(
                    Budget(
                        tenant_id=tenant,
                        queue_name=f"queue-{q}",
                        amount=Decimal(50_000),
                        period=BudgetPeriod("monthly"),
                    )
                )
        service.process_job_costs(batches[0])  # warm up
        stored = duplicates = 0
        start = time.perf_counter()
        for batch in batches[1:]:
            for cost in service.process_job_costs(batch):
                duplicates += cost.duplicate
                stored += not cost.duplicate
        elapsed = time.perf_counter() - start
        jobs = sum(len(b) for b in batches[1:])
        # exact per-day statistics are computed on read, not per batch: time that too
        t0 = time.perf_counter()
        days = service.get_daily_costs(start=now.date() - timedelta(days=40), end=now.date())
        stats_s = time.perf_counter() - t0
        budgets = len(service.list_budgets())
    return {
        "budgets": budgets,
        "jobs_submitted": jobs,
        "jobs_stored": stored,
        "duplicates": duplicates,
        "jobs_per_s": round(jobs / elapsed),
        "daily_rows": len(days),
        "daily_stats_refresh_s": round(stats_s, 3),
    }


_FLOOR_COLUMNS = (
    "tenant_id text, job_id text, queue_name text, job_type text, priority int, ts text, day text, "
    "cpu_time text, memory_mb_seconds text, payload_bytes text, redis_ops text, network_bytes text, total_cost bigint, "
    "PRIMARY KEY (tenant_id, job_id)"
)


def _floor_rows(batch: list[JobMetrics]) -> list[tuple[object, ...]]:
    return [
        (m.tenant_id, m.job_id, m.queue_name, m.job_type, m.priority, str(m.timestamp), str(m.timestamp)[:10],
         str(m.cpu_time), str(m.memory_mb_seconds), str(m.payload_bytes), str(m.redis_ops), str(m.network_bytes), 1)
        for m in batch
    ]  # fmt: skip


def floor_sqlite(batches: list[list[JobMetrics]]) -> float:
    """Raw inserts: the same rows (13 columns, the same primary key) with executemany,
    one transaction per batch of 1,000, WAL and synchronous=FULL as the service uses;
    jobs per second."""
    import sqlite3

    rows = [_floor_rows(b) for b in batches]
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"CREATE TABLE jobs ({_FLOOR_COLUMNS})")
        marks = ",".join("?" * 13)
        start = time.perf_counter()
        for batch in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT OR IGNORE INTO jobs VALUES ({marks})", batch)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
    return sum(len(b) for b in rows) / elapsed


def floor_postgres(batches: list[list[JobMetrics]]) -> float:
    """Raw inserts on PostgreSQL: the same rows with psycopg's executemany (pipelined),
    one transaction per batch; jobs per second."""
    import psycopg

    rows = [_floor_rows(b) for b in batches]
    schema = f"jbfloor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".jobs ({_FLOOR_COLUMNS})')
        conn.commit()
        marks = ",".join(["%s"] * 13)
        try:
            start = time.perf_counter()
            for batch in rows:
                with conn.cursor() as cur:
                    cur.executemany(f'INSERT INTO "{schema}".jobs VALUES ({marks}) ON CONFLICT DO NOTHING', batch)
                conn.commit()
            elapsed = time.perf_counter() - start
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.commit()
    return sum(len(b) for b in rows) / elapsed


def sqlite_bytes(path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def postgres_bytes(schema: str) -> tuple[int, int]:
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'VACUUM ANALYZE "{schema}".job_costs') if False else None
        job = conn.execute(sa.text(f"select pg_total_relation_size('\"{schema}\".job_costs')")).scalar_one()
        total = conn.execute(
            sa.text(
                "select sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = :s and c.relkind = 'r'"
            ),
            {"s": schema},
        ).scalar_one()
    engine.dispose()
    return int(job), int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    now = datetime(2026, 6, 28, 12, tzinfo=UTC)
    batches = make_batches(args.jobs + BATCH, now - timedelta(days=25))
    figures: dict[str, object] = {"batch_size": BATCH, "duplicate_share": DUPLICATE_SHARE}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            result = run(Config(database_url=f"sqlite:///{path}"), batches, now)
            size = sqlite_bytes(path)
            result["bytes_per_job_total_db"] = round(size / (result["jobs_stored"] + BATCH))
            floor = floor_sqlite(batches[1:])
            result["floor_raw_inserts_per_s"] = round(floor)
            result["floor_over_ingest"] = round(floor / result["jobs_per_s"], 2)
            figures["sqlite"] = result
    if args.backend in ("postgres", "both"):
        schema = f"jbbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        try:
            result = run(Config(database_url=POSTGRES_URL, database_schema=schema), batches, now)
            job_bytes, total = postgres_bytes(schema)
            stored = result["jobs_stored"] + BATCH
            result["bytes_per_job_job_costs"] = round(job_bytes / stored)
            result["bytes_per_job_total_db"] = round(total / stored)
            floor = floor_postgres(batches[1:])
            result["floor_raw_inserts_per_s"] = round(floor)
            result["floor_over_ingest"] = round(floor / result["jobs_per_s"], 2)
            figures["postgres"] = result
        finally:
            engine = sa.create_engine(POSTGRES_URL)
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
    report("ingest", figures)


if __name__ == "__main__":
    main()
