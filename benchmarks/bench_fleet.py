"""Metering at fleet scale: admit -> meter cycles from 8 processes, against floors
measured in the same run (issue 18).

Each worker process loops ``admit(tenant, queue)`` then ``process_job_cost(job,
reservation_id=...)``, one job at a time, for a few seconds, with a budget that never
blocks.  The floors, from the same number of processes:

* PostgreSQL: a single-row ``INSERT`` + ``COMMIT`` per operation (psycopg, one durable
  transaction per row, default ``synchronous_commit``);
* Redis: a bare ``EVALSHA`` per operation;
* SQLite: a single-row ``INSERT`` + ``COMMIT`` per operation on a WAL file with
  ``synchronous=FULL`` (what the service uses).

Every figure is the median of ``--runs`` runs (3), each a fresh schema/file; floors and
cycles alternate.  After each cycle run a fresh service checks that the ledger and the
Redis counters equal the sum of the job costs the workers saw and that no reservation
is left open.

    .venv/bin/python benchmarks/bench_fleet.py [--quick] [--procs 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import redis
from _common import POSTGRES_URL, report
from bench_shared import (
    ESTIMATE,
    QUEUE,
    REDIS_URL,
    TENANT,
    _collect,
    delete_keys,
    job,
    make_budgets,
    pg_schema,
    stored_jobs,
    verify,
)

from jobbudget import BudgetService, Config

PG_DSN = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
CYCLE_TARGET = 2000.0
RATIO_TARGET = 0.3


# -- floors -------------------------------------------------------------------------------


def _run_workers(target: Any, args: tuple[Any, ...], procs: int, seconds: float) -> float:
    """Start ``procs`` workers together; each runs ``seconds`` and reports its count;
    the total rate in operations per second."""
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args, p, seconds, go, out)) for p in range(procs)]
    for w in workers:
        w.start()
    results = _collect(out, procs, go, timeout=300 + seconds)
    results.pop()
    for w in workers:
        w.join(timeout=60)
    return sum(r["ops"] / r["elapsed"] for r in results)


def _loop(op: Any, seconds: float, go: Any, out: Any, proc: int) -> None:
    for i in range(50):  # warm up
        op(-1 - i)
    out.put(("ready", proc))
    go.wait()
    t0 = time.perf_counter()
    end = t0 + seconds
    n = 0
    while time.perf_counter() < end:
        op(n)
        n += 1
    out.put(("done", {"proc": proc, "ops": n, "elapsed": time.perf_counter() - t0}))


def pg_floor_worker(schema: str, proc: int, seconds: float, go: Any, out: Any) -> None:
    try:
        with psycopg.connect(PG_DSN) as conn:
            sql = f'INSERT INTO "{schema}".floor (proc, n, amount) VALUES (%s, %s, %s)'

            def op(n: int) -> None:
                conn.execute(sql, (proc, n, Decimal("0.000123456")))
                conn.commit()

            _loop(op, seconds, go, out, proc)
    except BaseException as exc:
        out.put(("error", f"{proc}: {exc!r}"))
        raise


def pg_floor(procs: int, seconds: float) -> float:
    schema = f"jbfloor_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".floor (proc int, n int, amount numeric, PRIMARY KEY (proc, n))')
    try:
        return _run_workers(pg_floor_worker, (schema,), procs, seconds)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def redis_floor_worker(proc: int, seconds: float, go: Any, out: Any) -> None:
    try:
        client: redis.Redis = redis.Redis.from_url(REDIS_URL)
        script = client.register_script("return 1")
        _loop(lambda n: script(keys=[f"jbfloor:{proc}"]), seconds, go, out, proc)
    except BaseException as exc:
        out.put(("error", f"{proc}: {exc!r}"))
        raise


def redis_floor(procs: int, seconds: float) -> float:
    return _run_workers(redis_floor_worker, (), procs, seconds)


def sqlite_floor_worker(path: str, proc: int, seconds: float, go: Any, out: Any) -> None:
    import sqlite3

    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")

        def op(n: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO floor (proc, n, amount) VALUES (?, ?, ?)", (proc, n, 123456))
            conn.execute("COMMIT")

        _loop(op, seconds, go, out, proc)
        conn.close()
    except BaseException as exc:
        out.put(("error", f"{proc}: {exc!r}"))
        raise


def sqlite_floor(procs: int, seconds: float) -> float:
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "floor.db")
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE floor (proc int, n int, amount int, PRIMARY KEY (proc, n))")
        conn.commit()
        conn.close()
        return _run_workers(sqlite_floor_worker, (path,), procs, seconds)


# -- cycles -------------------------------------------------------------------------------


def cycle_worker(config: Config, proc: int, seconds: float, go: Any, out: Any) -> None:
    try:
        rng = random.Random(3000 + proc)
        tag = uuid.uuid4().hex[:8]
        with BudgetService(config) as service:
            total = Decimal(0)
            cycles = 0

            def op(n: int) -> None:
                nonlocal total, cycles
                admission = service.admit(TENANT, QUEUE, estimated_cost=ESTIMATE)
                assert admission.allowed and admission.reservation_id is not None, admission
                cost = service.process_job_cost(job(f"f{proc}-{tag}-{n}", rng), reservation_id=admission.reservation_id)
                total += cost.total_cost
                cycles += 1

            for i in range(50):  # warm up (counted in the sum: the ledger holds them)
                op(-1 - i)
            out.put(("ready", proc))
            go.wait()
            busy0, cpu0 = _busy_seconds(), _cpu_seconds()
            t0 = time.perf_counter()
            end = t0 + seconds
            n = 0
            while time.perf_counter() < end:
                op(n)
                n += 1
            elapsed = time.perf_counter() - t0
            cpu, busy = _cpu_seconds() - cpu0, _busy_seconds() - busy0
        result = {"proc": proc, "ops": n, "elapsed": elapsed, "sum": str(total), "cycles": cycles, "cpu": cpu}
        out.put(("done", {**result, "busy": busy}))
    except BaseException as exc:
        out.put(("error", f"{proc}: {exc!r}"))
        raise


def _cpu_seconds() -> float:
    """This process's CPU time (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _busy_seconds() -> float:
    """The machine's busy CPU time so far (every core), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cycles(config: Config, procs: int, seconds: float) -> dict[str, Any]:
    with BudgetService(config) as setup:
        budget_ids = make_budgets(setup)
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=cycle_worker, args=(config, p, seconds, go, out)) for p in range(procs)]
    for w in workers:
        w.start()
    results = _collect(out, procs, go, timeout=300 + seconds)
    results.pop()
    for w in workers:
        w.join(timeout=60)
    expected = sum((Decimal(r["sum"]) for r in results), Decimal(0))
    checks = verify(config, budget_ids, expected) if config.redis_url else _verify_local(config, budget_ids, expected)
    stored = stored_jobs(config.database_url, config.database_schema)
    done = sum(r["ops"] for r in results)
    clients = sum(r["cpu"] for r in results)
    machine = statistics.median(r["busy"] for r in results)
    return {
        "rate": sum(r["ops"] / r["elapsed"] for r in results),
        # CPU per cycle: the workers' own, and everything else (databases, kernel)
        "client_cpu_us": round(clients / done * 1e6),
        "other_cpu_us": round(max(0.0, machine - clients) / done * 1e6),
        "stored_exact": stored == sum(r["cycles"] for r in results),
        **checks,
    }


def _verify_local(config: Config, budget_ids: list[str], expected: Decimal) -> dict[str, Any]:
    with BudgetService(config) as service:
        ledger = [service.get_budget_status(b).current_spend for b in budget_ids]
        open_reservations = service.open_reservations()
    return {
        "ledger_exact": all(x == expected for x in ledger),
        "redis_exact": True,
        "open_reservations": open_reservations,
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 processes, 1 s, 1 run: checks the script runs")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    procs, seconds, runs = (2, 1.0, 1) if args.quick else (args.procs, args.seconds, args.runs)
    run = f"jbf{uuid.uuid4().hex[:10]}"
    pg: dict[str, list[float]] = {"floor": [], "evalsha": [], "cycles": [], "cycles_journal": []}
    cpu: dict[str, list[tuple[int, int]]] = {"cycles": [], "cycles_journal": []}
    lite: dict[str, list[float]] = {"floor": [], "cycles_database": [], "cycles_local": []}
    exact: list[bool] = []
    try:
        for r in range(runs):
            print(f"run {r + 1}/{runs}: PostgreSQL + Redis ...", file=sys.stderr, flush=True)
            pg["floor"].append(pg_floor(procs, seconds))
            pg["evalsha"].append(redis_floor(procs, seconds))
            for mode in ("cycles", "cycles_journal"):
                with pg_schema() as schema, tempfile.TemporaryDirectory() as journal:
                    config = Config(
                        database_url=POSTGRES_URL,
                        database_schema=schema,
                        redis_url=REDIS_URL,
                        redis_prefix=f"{run}-{r}-{mode}",
                        notifications_in_background=False,
                        metering_journal=journal if mode == "cycles_journal" else None,
                    )
                    result = cycles(config, procs, seconds)
                pg[mode].append(result["rate"])
                cpu[mode].append((result["client_cpu_us"], result["other_cpu_us"]))
                exact.append(all(result[k] for k in ("ledger_exact", "redis_exact", "stored_exact")))
                exact.append(result["open_reservations"] == 0)
            if args.skip_sqlite:
                continue
            print(f"run {r + 1}/{runs}: SQLite ...", file=sys.stderr, flush=True)
            lite["floor"].append(sqlite_floor(procs, seconds))
            for mode in ("database", "local"):
                with tempfile.TemporaryDirectory() as tmp:
                    config = Config(
                        database_url=f"sqlite:///{Path(tmp) / 'fleet.db'}",
                        shared_state="database" if mode == "database" else "memory",
                        notifications_in_background=False,
                    )
                    result = cycles(config, procs, seconds)
                lite[f"cycles_{mode}"].append(result["rate"])
                exact.append(all(result[k] for k in ("ledger_exact", "stored_exact")))
                exact.append(mode == "local" or result["open_reservations"] == 0)
    finally:
        delete_keys(run)
    f, c, cj = median(pg["floor"]), median(pg["cycles"]), median(pg["cycles_journal"])
    figures: dict[str, Any] = {
        "quick": args.quick,
        "processes": procs,
        "seconds_per_run": seconds,
        "runs": runs,
        "postgres_redis": {
            "floor_insert_commit_per_s": round(f),
            "floor_evalsha_per_s": round(median(pg["evalsha"])),
            "cycles_per_s": round(c),
            "ratio_to_floor": round(c / f, 3),
            "cycles_journal_per_s": round(cj),
            "ratio_journal_to_floor": round(cj / f, 3),
            "runs_floor": [round(x) for x in pg["floor"]],
            "runs_cycles": [round(x) for x in pg["cycles"]],
            "runs_cycles_journal": [round(x) for x in pg["cycles_journal"]],
            # CPU per cycle (µs): the worker processes' own, and the rest (databases, kernel)
            "cpu_us_per_cycle": {k: [list(x) for x in v] for k, v in cpu.items()},
            "target_met": max(c, cj) >= CYCLE_TARGET and max(c, cj) / f >= RATIO_TARGET,
        },
        "exact": all(exact),
    }
    if lite["floor"]:
        lf = median(lite["floor"])
        figures["sqlite"] = {
            "floor_insert_commit_per_s": round(lf),
            **{f"{k}_per_s": round(median(v)) for k, v in lite.items() if k != "floor"},
            **{f"ratio_{k}": round(median(v) / lf, 3) for k, v in lite.items() if k != "floor"},
        }
    report("fleet", figures)


if __name__ == "__main__":
    main()
