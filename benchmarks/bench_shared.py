"""Shared state through a real Redis: check latency against a bare redis-py GET
(targets: check p99 <= 1 ms, check/GET ratio <= 3), concurrent ingest from several
processes into one PostgreSQL schema (throughput, and the ledger and the Redis counter
both exact to the nano-dollar), and admissions per second with reservations from 8
processes (open reservations 0 and spend exact at the end).

    .venv/bin/python benchmarks/bench_shared.py [--quick] [--sqlite-ingest]

Each run uses its own Redis prefix (its keys are deleted afterwards) and a fresh
PostgreSQL schema ``jbbench_<random>`` (dropped afterwards).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from _common import POSTGRES_URL, report, summarize_latencies

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.counters.shared import connect

REDIS_URL = "redis://127.0.0.1:6379/0"
TENANT = "acme"
QUEUE = "q"
BATCH = 1000
BIG = Decimal(1_000_000_000)  # the largest budget amount: nothing here is ever blocked
ESTIMATE = Decimal("0.01")
CHECK_P99_TARGET_US = 1000.0
RATIO_TARGET = 3.0

FULL = {"checks": 20_000, "procs": 4, "jobs": 50_000, "adm_procs": 8, "seconds": 10.0}
QUICK = {"checks": 2_000, "procs": 2, "jobs": 2_000, "adm_procs": 2, "seconds": 2.0}


# -- set-up helpers ---------------------------------------------------------------------


def make_config(url: str, prefix: str, schema: str | None) -> Config:
    extra: dict[str, Any] = {"database_schema": schema} if schema else {}
    return Config(
        database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, notifications_in_background=False, **extra
    )


def make_budgets(service: BudgetService) -> list[str]:
    """A tenant-wide and a queue budget: every check reads 2 budget periods."""
    ids = []
    for queue in ("", QUEUE):
        budget = service.create_budget(
            Budget(tenant_id=TENANT, queue_name=queue, amount=BIG, period=BudgetPeriod("monthly"))
        )
        assert budget.id is not None
        ids.append(budget.id)
    return ids


def job(job_id: str, rng: random.Random) -> JobMetrics:
    """A job with an odd cost (many decimal places), so exactness means something."""
    return JobMetrics(
        job_id=job_id,
        tenant_id=TENANT,
        queue_name=QUEUE,
        cpu_time=round(rng.uniform(0.001, 30), 3),
        memory_mb_seconds=rng.randint(1, 50_000),
        payload_bytes=rng.randint(0, 200_000),
        redis_ops=rng.randint(0, 200),
        network_bytes=rng.randint(0, 1_000_000),
    )


@contextmanager
def pg_schema() -> Iterator[str]:
    schema = f"jbbench_{uuid.uuid4().hex[:10]}"
    try:
        yield schema
    finally:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def stored_jobs(url: str, schema: str | None) -> int:
    engine = sa.create_engine(url)
    table = f'"{schema}".job_costs' if schema else "job_costs"
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()
    engine.dispose()
    return int(count)


def verify(config: Config, budget_ids: list[str], expected: Decimal) -> dict[str, Any]:
    """A fresh service (its spend loaded from the ledger) and the Redis counters."""
    with BudgetService(config) as service:
        ledger = [service.get_budget_status(b).current_spend for b in budget_ids]
        states = [s for s in service.core.spend.index.states() if s.budget.id in budget_ids and s.key is not None]
        keys = [(s.budget.tenant_id, s.key) for s in states if s.key is not None]
        hot = service.core.hot.counters.spends(keys)
        open_reservations = service.open_reservations()
    return {
        "expected_spend": str(expected),
        "ledger_spend": [str(x) for x in ledger],
        "redis_spend": [str(x) for x in hot],
        "ledger_exact": all(x == expected for x in ledger) and len(ledger) == len(budget_ids),
        "redis_exact": all(x == expected for x in hot) and len(hot) == len(budget_ids),
        "open_reservations": open_reservations,
    }


def delete_keys(prefix: str) -> int:
    client: redis.Redis = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i : i + 1000])
    client.close()
    return len(keys)


def timed(n: int, fn: Callable[[], object]) -> list[int]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def rounded(stats: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in stats.items()}


# -- 1. check latency through Redis, against a bare GET --------------------------------


def bench_check(prefix: str, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(f"sqlite:///{Path(tmp) / 'check.db'}", prefix, None)
        with BudgetService(config) as service:
            make_budgets(service)
            client = connect(REDIS_URL, timeout=config.redis_timeout)  # the service's client settings
            key = f"{prefix}:epoch"
            check = service.check_budget_compliance
            assert check(TENANT, QUEUE).type == "allow"
            for _ in range(2000):  # warm up
                check(TENANT, QUEUE)
                client.get(key)
            clock = time.perf_counter_ns
            check_ns: list[int] = []
            get_ns: list[int] = []
            for _ in range(n):  # interleaved: both see the same machine at the same moment
                t0 = clock()
                client.get(key)
                t1 = clock()
                check(TENANT, QUEUE)
                t2 = clock()
                get_ns.append(t1 - t0)
                check_ns.append(t2 - t1)
            admit_ns: list[int] = []
            release_ns: list[int] = []
            for _ in range(n):
                t0 = clock()
                admission = service.admit(TENANT, QUEUE, estimated_cost=ESTIMATE)
                t1 = clock()
                assert admission.allowed and admission.reservation_id
                service.release(admission.reservation_id)
                release_ns.append(clock() - t1)
                admit_ns.append(t1 - t0)
            both = [a + r for a, r in zip(admit_ns, release_ns, strict=True)]
            open_left = service.open_reservations()
            client.close()
    check_s, get_s = summarize_latencies(check_ns), summarize_latencies(get_ns)
    p99_ratio = check_s["p99_us"] / get_s["p99_us"]
    p50_ratio = check_s["p50_us"] / get_s["p50_us"]
    return {
        "checks": n,
        "budget_periods_per_check": 2,
        "check": rounded(check_s),
        "redis_get": rounded(get_s),
        "ratio_p99": round(p99_ratio, 2),
        "ratio_p50": round(p50_ratio, 2),
        "check_p99_target_met": check_s["p99_us"] <= CHECK_P99_TARGET_US,
        "ratio_target_met": p99_ratio <= RATIO_TARGET,
        "admit": rounded(summarize_latencies(admit_ns)),
        "release": rounded(summarize_latencies(release_ns)),
        "admit_plus_release": rounded(summarize_latencies(both)),
        "open_reservations_after": open_left,
    }


# -- 2. concurrent ingest ---------------------------------------------------------------


def ingest_worker(url: str, prefix: str, schema: str | None, proc: int, jobs: int, go: Any, out: Any) -> None:
    try:
        rng = random.Random(1000 + proc)
        batches = [
            [job(f"p{proc}-{i:08d}", rng) for i in range(start, min(start + BATCH, jobs))]
            for start in range(0, jobs, BATCH)
        ]
        with BudgetService(make_config(url, prefix, schema)) as service:
            out.put(("ready", proc))
            go.wait()
            total = Decimal(0)
            stored = 0
            for batch in batches:
                for cost in service.process_job_costs(batch):
                    if not cost.duplicate:
                        total += cost.total_cost
                        stored += 1
            finished = time.time()
        out.put(("done", {"proc": proc, "sum": str(total), "stored": stored, "finished": finished}))
    except BaseException as exc:
        out.put(("error", f"{proc}: {exc!r}"))
        raise


def bench_ingest(url: str, schema: str | None, prefix: str, procs: int, jobs: int) -> dict[str, Any]:
    config = make_config(url, prefix, schema)
    with BudgetService(config) as setup:  # creates the schema and the budgets, once
        budget_ids = make_budgets(setup)
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=ingest_worker, args=(url, prefix, schema, p, jobs, go, out)) for p in range(procs)]
    for w in workers:
        w.start()
    results = _collect(out, procs, go, timeout=1800)
    started = results.pop()
    for w in workers:
        w.join(timeout=60)
    wall = max(r["finished"] for r in results) - started
    expected = sum((Decimal(r["sum"]) for r in results), Decimal(0))
    count = stored_jobs(url, schema)
    checks = verify(config, budget_ids, expected)
    return {
        "processes": procs,
        "jobs_per_process": jobs,
        "batch_size": BATCH,
        "wall_s": round(wall, 3),
        "jobs_per_s": round(procs * jobs / wall),
        "stored_by_workers": sum(r["stored"] for r in results),
        "stored_jobs": count,
        "count_exact": count == procs * jobs,
        **checks,
    }


def _collect(out: Any, procs: int, go: Any, *, timeout: float) -> list[Any]:
    """Wait for every worker to be ready, start them together, gather their results;
    the common start time is appended last."""
    deadline = time.monotonic() + timeout
    ready = 0
    while ready < procs:
        kind, value = out.get(timeout=max(1.0, deadline - time.monotonic()))
        if kind == "error":
            raise RuntimeError(f"worker failed: {value}")
        ready += kind == "ready"
    started = time.time()
    go.set()
    results: list[Any] = []
    while len(results) < procs:
        kind, value = out.get(timeout=max(1.0, deadline - time.monotonic()))
        if kind == "error":
            raise RuntimeError(f"worker failed: {value}")
        results.append(value)
    return [*results, started]


# -- 3. admissions per second with reservations -------------------------------------------


def admit_worker(
    url: str, prefix: str, schema: str | None, proc: int, seconds: float, ingest: bool, go: Any, out: Any
) -> None:
    try:
        rng = random.Random(2000 + proc)
        with BudgetService(make_config(url, prefix, schema)) as service:
            for _ in range(20):  # warm up the connections (released: nothing is left held)
                service.release(str(service.admit(TENANT, QUEUE, estimated_cost=ESTIMATE).reservation_id))
            out.put(("ready", proc))
            go.wait()
            t0 = time.perf_counter()
            end = t0 + seconds
            admitted = refused = 0
            total = Decimal(0)
            tag = uuid.uuid4().hex[:8]
            while time.perf_counter() < end:
                admission = service.admit(TENANT, QUEUE, estimated_cost=ESTIMATE)
                if not admission.allowed or admission.reservation_id is None:
                    refused += 1
                    continue
                admitted += 1
                if ingest:
                    cost = service.process_job_cost(
                        job(f"a{proc}-{tag}-{admitted}", rng), reservation_id=admission.reservation_id
                    )
                    total += cost.total_cost
                else:
                    service.release(admission.reservation_id)
            elapsed = time.perf_counter() - t0
        out.put(
            (
                "done",
                {"proc": proc, "admitted": admitted, "refused": refused, "sum": str(total), "elapsed": elapsed},
            )
        )
    except BaseException as exc:
        out.put(("error", f"{proc}: {exc!r}"))
        raise


def bench_admit(url: str, schema: str | None, prefix: str, procs: int, seconds: float, ingest: bool) -> dict[str, Any]:
    config = make_config(url, prefix, schema)
    with BudgetService(config) as setup:
        budget_ids = make_budgets(setup)
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=admit_worker, args=(url, prefix, schema, p, seconds, ingest, go, out)) for p in range(procs)
    ]
    for w in workers:
        w.start()
    results = _collect(out, procs, go, timeout=300 + seconds)
    results.pop()
    for w in workers:
        w.join(timeout=60)
    admitted = sum(r["admitted"] for r in results)
    per_proc = [round(r["admitted"] / r["elapsed"]) for r in sorted(results, key=lambda r: r["proc"])]
    expected = sum((Decimal(r["sum"]) for r in results), Decimal(0))
    checks = verify(config, budget_ids, expected)
    figures: dict[str, Any] = {
        "processes": procs,
        "seconds": seconds,
        "estimated_cost": str(ESTIMATE),
        "admitted": admitted,
        "refused": sum(r["refused"] for r in results),
        "admissions_per_s": round(sum(per_proc)),
        "admissions_per_s_per_process": per_proc,
        **checks,
        "reservations_closed": checks["open_reservations"] == 0,
    }
    if ingest:
        figures["stored_jobs"] = stored_jobs(url, schema)
        figures["count_exact"] = figures["stored_jobs"] == admitted
    return figures


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs, not the figures")
    parser.add_argument("--sqlite-ingest", action="store_true", help="also run the ingest on a SQLite file")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    run = f"jbb{uuid.uuid4().hex[:10]}"
    figures: dict[str, Any] = {"quick": args.quick, "redis_prefix": run}
    try:
        print("1. check latency through Redis ...", file=sys.stderr, flush=True)
        figures["check"] = bench_check(f"{run}-chk", size["checks"])
        print("2. concurrent ingest (PostgreSQL) ...", file=sys.stderr, flush=True)
        with pg_schema() as schema:
            figures["ingest_postgres"] = bench_ingest(POSTGRES_URL, schema, f"{run}-ing", size["procs"], size["jobs"])
        if args.sqlite_ingest:
            print("2b. concurrent ingest (SQLite) ...", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'ingest.db'}"
                figures["ingest_sqlite"] = bench_ingest(url, None, f"{run}-ins", size["procs"], size["jobs"])
        print("3. admissions with reservations (PostgreSQL) ...", file=sys.stderr, flush=True)
        with pg_schema() as schema:
            figures["admit_ingest"] = bench_admit(
                POSTGRES_URL, schema, f"{run}-adm", size["adm_procs"], size["seconds"], ingest=True
            )
        with pg_schema() as schema:
            figures["admit_release"] = bench_admit(
                POSTGRES_URL, schema, f"{run}-rel", size["adm_procs"], size["seconds"], ingest=False
            )
    finally:
        figures["redis_keys_deleted"] = delete_keys(run)
    exact = {
        f"{part}.{name}": bool(figures[part][name])
        for part in ("ingest_postgres", "ingest_sqlite", "admit_ingest", "admit_release")
        if part in figures
        for name in ("ledger_exact", "redis_exact", "count_exact", "reservations_closed")
        if name in figures[part]
    }
    exact["check.reservations_closed"] = figures["check"]["open_reservations_after"] == 0
    figures["exactness"] = exact
    figures["all_exact"] = all(exact.values())
    report("shared", figures)
    print_table(figures)
    if not figures["all_exact"]:
        sys.exit(1)


def print_table(f: dict[str, Any]) -> None:
    c = f["check"]
    ok = {True: "met", False: "MISSED"}
    print()
    print(f"{'shared state (Redis)':<38} {'p50':>10} {'p99':>10}")
    print(f"{'check_budget_compliance (2 periods)':<38} {c['check']['p50_us']:>8} us {c['check']['p99_us']:>7} us")
    print(f"{'bare redis-py GET':<38} {c['redis_get']['p50_us']:>8} us {c['redis_get']['p99_us']:>7} us")
    print(f"{'ratio check / GET':<38} {c['ratio_p50']:>10} {c['ratio_p99']:>10}")
    print(f"{'admit':<38} {c['admit']['p50_us']:>8} us {c['admit']['p99_us']:>7} us")
    print(f"{'release':<38} {c['release']['p50_us']:>8} us {c['release']['p99_us']:>7} us")
    print(
        f"{'admit + release':<38} {c['admit_plus_release']['p50_us']:>8} us {c['admit_plus_release']['p99_us']:>7} us"
    )
    print(
        f"check p99 <= {CHECK_P99_TARGET_US:g} us: {ok[c['check_p99_target_met']]}; "
        f"ratio p99 <= {RATIO_TARGET:g}: {ok[c['ratio_target_met']]}"
    )
    for part in ("ingest_postgres", "ingest_sqlite"):
        if part in f:
            r = f[part]
            print(
                f"{part:<20} {r['processes']} x {r['jobs_per_process']:,} jobs: {r['jobs_per_s']:>8,} jobs/s "
                f"({r['wall_s']} s); stored {r['stored_jobs']:,}; ledger exact {r['ledger_exact']}, "
                f"Redis exact {r['redis_exact']}"
            )
    for part in ("admit_ingest", "admit_release"):
        r = f[part]
        print(
            f"{part:<20} {r['processes']} procs x {r['seconds']:g} s: {r['admissions_per_s']:>8,} admissions/s "
            f"(per process {r['admissions_per_s_per_process']}); open reservations {r['open_reservations']}, "
            f"ledger exact {r['ledger_exact']}, Redis exact {r['redis_exact']}"
        )
    print(f"all exactness checks passed: {f['all_exact']}")


if __name__ == "__main__":
    main()
