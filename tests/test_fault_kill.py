"""SIGKILL of an ingesting process at random moments, on SQLite and PostgreSQL.

A child (``fault_ingester.py``) stores a fixed plan of batches, some redelivering
earlier jobs, and acknowledges a batch (one fsynced line) only once
``process_job_costs`` has returned.  The parent kills it with SIGKILL after a seeded
random delay, restarts it from an arbitrary earlier batch (the one in flight
included), and repeats.  Then, and again after a final clean run: every
acknowledged job is stored exactly once at the acknowledged cost, and every
aggregate (daily rows, budget spend, job counts) is the exact sum of its jobs.

``JOBBUDGET_FAULT_SEED`` replays a run (the seed is printed).
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from conftest import POSTGRES_URL
from fault_ingester import BATCHES, NOW, config_of, planned_jobs
from jobbudget import BudgetService, Config
from jobbudget.domain.budget import Budget
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.storage.sql.store import SqlStore
from jobbudget.storage.sql.tables import budget_spend, job_costs

pytestmark = pytest.mark.slow  # real faults: local runs may skip them with -m "not slow"; CI runs them
KILLS = 20  # per backend
CHILD = Path(__file__).with_name("fault_ingester.py")
STARTUP_TIMEOUT = 90.0  # seconds: generous, the machine may be busy with other runs
JANUARY = date(2024, 1, 1)
COMPONENTS = ("cpu_cost", "memory_cost", "payload_cost", "redis_cost", "network_cost", "base_cost")


@dataclass
class Figures:
    kills: int = 0
    clean_exits: int = 0
    acked: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    lost: int = 0
    doubled: int = 0


def _seed() -> int:
    seed = int(os.environ.get("JOBBUDGET_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
    print(f"fault-kill seed: {seed} (JOBBUDGET_FAULT_SEED={seed} replays it)")
    return seed


def _config(url: str, schema: str | None, journal: Path | None = None) -> Config:
    return config_of(url, schema, None if journal is None else str(journal))


def _create_budgets(url: str, schema: str | None, journal: Path | None = None) -> list[str]:
    """A tenant-wide and a queue budget; small enough that alerts fire (in the same
    transactions as the jobs) while the child is being killed."""
    with BudgetService(_config(url, schema, journal), clock=lambda: NOW) as service:
        made = [
            service.create_budget(Budget(tenant_id="t0", amount=Decimal("50"), period=BudgetPeriod("monthly"))),
            service.create_budget(
                Budget(tenant_id="t1", queue_name="q0", amount=Decimal("20"), period=BudgetPeriod("monthly"))
            ),
        ]
    return [str(b.id) for b in made]


def _read_acks(path: Path) -> tuple[dict[tuple[str, str], Decimal], int]:
    """Acknowledged jobs and their costs, and the highest acknowledged batch.  A last
    line without its newline (killed mid-write) acknowledges nothing."""
    acked: dict[tuple[str, str], Decimal] = {}
    last = -1
    if not path.exists():
        return acked, last
    for line in path.read_text().split("\n")[:-1]:
        entry = json.loads(line)
        last = max(last, entry["b"])
        for tenant, job_id, cost, _duplicate in entry["jobs"]:
            key = (tenant, job_id)
            assert acked.setdefault(key, Decimal(cost)) == Decimal(cost), f"{key} acknowledged at two costs"
    return acked, last


def _spawn(url: str, schema: str | None, ack: Path, start: int, journal: Path | None = None) -> subprocess.Popen[str]:
    extra = [] if journal is None else [str(journal)]
    return subprocess.Popen(
        [sys.executable, str(CHILD), url, schema or "-", str(ack), str(start), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=CHILD.parent,
    )


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            assert line == "ready\n", f"child said {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
            return
        if proc.poll() is not None:
            pytest.fail(
                f"child exited with {proc.returncode} before ready: {proc.stderr.read() if proc.stderr else ''}"
            )
    proc.kill()
    pytest.fail(f"child not ready within {STARTUP_TIMEOUT} s")


def _finish(proc: subprocess.Popen[str]) -> int:
    _out, err = proc.communicate(timeout=STARTUP_TIMEOUT * 2)
    assert proc.returncode in (0, -signal.SIGKILL), f"child failed ({proc.returncode}): {err}"
    return proc.returncode


def _campaign(url: str, schema: str | None, ack: Path, rng: random.Random, journal: Path | None = None) -> Figures:
    """Start, kill, restart the child until KILLS kills landed while it was running."""
    figures = Figures()
    while figures.kills < KILLS:
        _acked, last = _read_acks(ack)
        start = rng.randint(max(0, last - 4), last + 1) if last + 1 < BATCHES else rng.randrange(BATCHES)
        before_ready = rng.random() < 0.15  # now and then, kill it while it starts up
        delay = rng.uniform(0.0, 0.6) if before_ready else rng.uniform(0.0, 0.35)
        proc = _spawn(url, schema, ack, start, journal)
        if not before_ready:
            _wait_ready(proc)
        time.sleep(delay)  # the fault's random moment (the seed picks it)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        if _finish(proc) == 0:
            figures.clean_exits += 1
        else:
            figures.kills += 1
    return figures


def _check(service: BudgetService, store: SqlStore, budget_ids: list[str], figures: Figures) -> None:
    """Acknowledged jobs stored once at their cost; aggregates the exact sums of the jobs."""
    with store.engine.connect() as conn:
        jobs = conn.execute(sql_select(job_costs)).mappings().all()
        spend_rows = conn.execute(sql_select(budget_spend)).mappings().all()
        keyed = conn.execute(
            sql_select(job_costs.c.tenant_id, job_costs.c.job_id, func.count()).group_by(
                job_costs.c.tenant_id, job_costs.c.job_id
            )
        ).all()
    rows_per_key = {(t, j): n for t, j, n in keyed}
    stored = {(r["tenant_id"], r["job_id"]): r for r in jobs}
    figures.lost = sum(1 for key in figures.acked if key not in stored)
    figures.doubled = sum(n - 1 for n in rows_per_key.values() if n > 1)
    assert figures.lost == 0, f"acknowledged but not stored: {sorted(k for k in figures.acked if k not in stored)[:5]}"
    assert figures.doubled == 0 and len(jobs) == len(stored)
    wrong = {k: (c, stored[k]["total_cost"]) for k, c in figures.acked.items() if stored[k]["total_cost"] != c}
    assert not wrong, f"stored cost differs from the acknowledged one: {list(wrong.items())[:5]}"
    for r in jobs:  # each job's components add up to its total
        assert sum((r[c] for c in COMPONENTS), Decimal(0)) == r["total_cost"], r["job_id"]

    # daily aggregates: (tenant, queue, day) rows == sums over the stored jobs
    expected: dict[tuple[str, str, date], list[Decimal]] = {}
    for r in jobs:
        sums = expected.setdefault((r["tenant_id"], r["queue_name"], r["day"]), [Decimal(0)] * 8)
        for i, value in enumerate((Decimal(1), r["total_cost"], *(r[c] for c in COMPONENTS))):
            sums[i] += value
    daily = service.get_daily_costs(start=date(2024, 1, 1), end=date(2024, 1, 31))
    got = {
        (d.tenant_id, d.queue_name, d.date): [
            Decimal(d.total_jobs),
            d.total_cost,
            *(getattr(d.breakdown, c) for c in COMPONENTS),
        ]
        for d in daily
    }
    assert got == expected
    extra_counted = sum(int(d.total_jobs) for d in daily) - len(jobs)
    assert extra_counted == 0, f"{extra_counted} jobs counted twice in the daily aggregates"
    for d in daily:
        costs = [
            r["total_cost"]
            for r in jobs
            if (r["tenant_id"], r["queue_name"], r["day"]) == (d.tenant_id, d.queue_name, d.date)
        ]
        assert (d.min_job_cost, d.max_job_cost) == (min(costs), max(costs))

    # budget spend: each budget's January spend and job count == its jobs' sums
    scopes = {b.id: b for b in service.list_budgets()}
    spend: dict[tuple[str, date], tuple[Decimal, int]] = {}
    for r in spend_rows:  # a period's spend is the sum of its shards
        total, count = spend.get((r["budget_id"], r["period_start"]), (Decimal(0), 0))
        spend[(r["budget_id"], r["period_start"])] = (total + r["spend"], count + r["jobs"])
    for budget_id in budget_ids:
        b = scopes[budget_id]
        mine = [r for r in jobs if r["tenant_id"] == b.tenant_id and b.queue_name in ("", r["queue_name"])]
        want = (sum((r["total_cost"] for r in mine), Decimal(0)), len(mine))
        assert spend.get((budget_id, JANUARY), (Decimal(0), 0)) == want, b.scope
        assert service.get_budget_status(budget_id).current_spend == want[0], b.scope


def _integrity_ok(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def _kill_and_verify(url: str, schema: str | None, tmp_path: Path, backend: str, journal: Path | None = None) -> None:
    rng = random.Random(_seed())
    began = time.monotonic()
    budget_ids = _create_budgets(url, schema, journal)
    ack = tmp_path / "acks.jsonl"
    figures = _campaign(url, schema, ack, rng, journal)
    figures.acked, _ = _read_acks(ack)
    acked_under_fire = len(figures.acked)
    assert acked_under_fire > 0, "no batch was acknowledged between the kills: nothing was tested"
    if backend == "sqlite":
        _integrity_ok(Path(url.removeprefix("sqlite:///")))
    store = SqlStore(url, schema=schema)
    try:
        # (with a journal: opening the service replays the last killed child's journal)
        with BudgetService(_config(url, schema, journal), clock=lambda: NOW, store=store) as service:
            if journal is not None:
                _check_redis(service)  # (Redis, over until rebuilt after a replay: never under)
            _check(service, store, budget_ids, figures)  # the state the kills left
        proc = _spawn(url, schema, ack, 0, journal)  # a final clean run redelivers everything
        assert _finish(proc) == 0
        figures.acked, _ = _read_acks(ack)
        assert {int(j.removeprefix("job-")) for _t, j in figures.acked} == planned_jobs()
        store = SqlStore(url, schema=schema)
        with BudgetService(_config(url, schema, journal), clock=lambda: NOW, store=store) as service:
            if journal is not None:
                _check_redis(service)
            _check(service, store, budget_ids, figures)
    finally:
        store.close()
    if backend == "sqlite":
        _integrity_ok(Path(url.removeprefix("sqlite:///")))
    print(
        f"{backend}: kills={figures.kills} clean_exits={figures.clean_exits} "
        f"acked_under_fire={acked_under_fire} acked={len(figures.acked)} "
        f"lost={figures.lost} doubled={figures.doubled} in {time.monotonic() - began:.1f} s"
    )
    assert figures.kills >= KILLS


def test_sigkill_while_ingesting_sqlite(tmp_path: Path) -> None:
    _kill_and_verify(f"sqlite:///{tmp_path / 'kill.db'}", None, tmp_path, "sqlite")


def test_sigkill_while_ingesting_postgres(tmp_path: Path, pg_schema: str) -> None:
    _kill_and_verify(POSTGRES_URL, pg_schema, tmp_path, "postgres")


def _check_redis(service: BudgetService) -> None:
    """The Redis counters, once the service's tick has rebuilt them after a replay,
    equal the ledger."""
    service.core.hot.tick()
    states = [s for s in service.core.spend.index.states() if s.key is not None]
    keys = [(s.budget.tenant_id, s.key) for s in states if s.key is not None]
    hot = service.core.hot.spends(keys)
    ledger = service.core.store.load_spend([k for _, k in keys])
    assert {k: v for k, v in hot.items() if v} == {k: v for k, v in ledger.items() if v}


def test_sigkill_while_metering_through_the_journal(tmp_path: Path, pg_schema: str) -> None:
    """kill -9 of a worker metering one job at a time through the metering journal
    (PostgreSQL + Redis): every acknowledged job is stored once, aggregates are exact,
    the dead workers' journals are replayed once, and Redis ends equal to the ledger."""
    import redis as redis_client

    journal = tmp_path / f"jbk{os.getpid()}"
    try:
        _kill_and_verify(POSTGRES_URL, pg_schema, tmp_path, "postgres+journal", journal)
        assert not any(p.stat().st_size for p in journal.glob("journal-*.log"))  # all replayed, none left
    finally:
        client = redis_client.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{journal.name}:*", count=1000))
        if keys:
            client.delete(*keys)


def test_acks_ignore_a_half_written_line(tmp_path: Path) -> None:
    """The parent's reading of the acknowledgements is what the test trusts."""
    ack = tmp_path / "acks.jsonl"
    ack.write_text('{"b":0,"jobs":[["t0","job-00000","1.5",false]]}\n{"b":1,"jobs":[["t0","job-0')
    acked, last = _read_acks(ack)
    assert acked == {("t0", "job-00000"): Decimal("1.5")} and last == 0
