"""A real Celery worker (``--pool=solo``, and prefork with one child) on the local Redis, with the budget
service on a SQLite file the test shares with it."""

from __future__ import annotations

import itertools
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import IN_CI

if not IN_CI:  # in CI a missing queue library fails the run
    pytest.importorskip("celery")

from integrations.conftest import BIN, ROOT, Shared, require_redis, stop, wait_for_log, worker_env

pytestmark = pytest.mark.slow


@dataclass
class Celery:
    module: Any
    queue: str
    log: Path

    def send(self, shared: Shared, tenant: str, name: str, *, headers: dict[str, Any] | None = None, **kw: Any) -> Any:
        task_id = kw.pop("task_id", None)
        return self.module.work.apply_async(
            args=[str(shared.marker(name))],
            kwargs=kw,
            headers={"tenant_id": tenant, **(headers or {})},
            task_id=task_id,
            queue=self.queue,
        )


@pytest.fixture
def celery(shared: Shared, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Celery]:
    """Starts a worker on a queue of its own (``--pool=solo``, or the pool a test asks
    for with ``@pytest.mark.parametrize("celery", [...], indirect=True)``)."""
    pool = getattr(request, "param", "solo")
    client = require_redis()
    queue = f"jobs-{uuid.uuid4().hex[:8]}"
    env = worker_env(JOBBUDGET_IT_DB=shared.url)
    log = tmp_path / "celery.log"
    import integrations.celery_app as module

    cmd = [str(BIN / "celery"), "-A", "integrations.celery_app", "worker", f"--pool={pool}", "-c", "1", "-Q", queue]
    cmd += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info", "--logfile", str(log)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_log(proc, log, "ready.")
        yield Celery(module, queue, log)
    finally:
        stop(proc)
        client.delete(os.environ["JOBBUDGET_IT_PREFIX"] + queue)
        client.close()


def test_blocked_tenant_is_refused_and_never_runs(celery: Celery, shared: Shared) -> None:
    refused = celery.send(shared, "blocked", "blocked", cpu=0.05)
    ran = celery.send(shared, "free", "free", cpu=0.05)
    assert ran.get(timeout=30)
    refused.get(timeout=30, propagate=False)
    assert refused.state == "FAILURE"
    assert "BudgetBlocked" in (refused.traceback or "") or type(refused.result).__name__ == "BudgetBlocked"
    assert not shared.marker("blocked").exists()  # the body never ran
    assert shared.stored(refused.id) == []  # nor was it metered
    assert len(shared.wait_stored(ran.id)) == 1
    by_kwarg = celery.module.work.apply_async(  # the tenant as a keyword argument
        args=[str(shared.marker("blocked"))], kwargs={"tenant_id": "blocked"}, queue=celery.queue
    )
    by_kwarg.get(timeout=30, propagate=False)
    assert by_kwarg.state == "FAILURE"
    after = celery.send(shared, "free", "after", cpu=0.01)  # one worker, in order: a retry would have run first
    assert after.get(timeout=30) and len(shared.wait_stored(after.id)) == 1
    assert not shared.marker("blocked").exists()  # no retry either


def test_tenant_and_queue_sources() -> None:
    from types import SimpleNamespace

    from jobbudget.integrations.celery import _lookup

    request = SimpleNamespace(tenant_id=None, headers={"x-tenant": "h"}, delivery_info={"routing_key": "rk"})
    assert _lookup(request, "x-tenant", {"x-tenant": "k"}) == "h"  # a header first
    assert _lookup(request, "tenant", {"tenant": "k"}) == "k"  # then a keyword argument
    assert _lookup(request, lambda r: r.delivery_info["routing_key"], {}) == "rk"  # or a callable
    assert _lookup(request, None, {}) is None


def test_emergency_priority_passes_a_block(celery: Celery, shared: Shared) -> None:
    res = celery.send(shared, "urgent", "urgent", headers={"budget_priority": 9})
    assert res.get(timeout=30)
    assert len(shared.runs("urgent")) == 1
    assert shared.wait_stored(res.id)[0]["priority"] == 9


@pytest.mark.parametrize("celery", ["solo", "prefork"], indirect=True)
def test_cpu_and_memory_are_metered(celery: Celery, shared: Shared) -> None:
    busy = celery.send(shared, "free", "busy", cpu=0.2)
    mem = celery.send(shared, "free", "mem", mb=50, hold=0.5)
    busy.get(timeout=30)
    mem.get(timeout=30)
    (row,) = shared.wait_stored(busy.id)
    assert Decimal("0.1") <= Decimal(row["cpu_time"]) <= Decimal("0.5")
    assert row["tenant_id"] == "free" and row["queue_name"] == celery.queue
    assert row["job_type"] == "it.work"
    assert Decimal(row["payload_bytes"]) > 0
    (mrow,) = shared.wait_stored(mem.id)
    mb_s = Decimal(mrow["memory_mb_seconds"])
    # ≥ 50 MB held 0.5 s on top of the worker's own resident memory (< 300 MB)
    assert Decimal(25) <= mb_s <= Decimal(300), mb_s


def test_redelivered_and_retried_tasks_are_metered_once(celery: Celery, shared: Shared) -> None:
    task_id = str(uuid.uuid4())
    first = celery.send(shared, "free", "twice", task_id=task_id, cpu=0.02)
    first.get(timeout=30)
    celery.send(shared, "free", "twice", task_id=task_id, cpu=0.02)  # the same task delivered again
    assert len(shared.wait_runs("twice", 2)) == 2
    assert len(shared.wait_stored(task_id)) == 1
    retried = celery.send(shared, "free", "retried", fail=True)  # autoretry: 1 + 3 runs, one id
    retried.get(timeout=60, propagate=False)
    assert retried.state == "FAILURE"
    assert len(shared.wait_runs("retried", 4)) == 4
    assert len(shared.wait_stored(retried.id)) == 1


def _start_gaps(runs: list[dict[str, float]]) -> tuple[float, float, float]:
    """Mean gap between start times; the first run's duration (the pacer spaces the
    slots it reserves by it); the longest duration."""
    runs = sorted(runs, key=lambda r: r["start"])
    gaps = [b["start"] - a["start"] for a, b in itertools.pairwise(runs)]
    durations = [r["end"] - r["start"] for r in runs]
    return sum(gaps) / len(gaps), durations[0], max(durations)


def test_throttled_tenant_is_paced_by_the_factor(celery: Celery, shared: Shared) -> None:
    n = 4
    free = [celery.send(shared, "free", "free-paced", cpu=0.25) for _ in range(n)]
    for r in free:
        r.get(timeout=30)
    slow = [celery.send(shared, "throttled", "throttled", cpu=0.25) for _ in range(n)]
    for r in slow:
        r.get(timeout=60)
    free_gap, _, free_longest = _start_gaps(shared.runs("free-paced"))
    gap, first, longest = _start_gaps(shared.runs("throttled"))
    assert len(shared.runs("throttled")) == n
    assert free_gap < 1.3 * free_longest + 0.1  # back to back
    # factor 0.5: start times d / 0.5 apart (busy half the time)
    assert 0.85 * first / 0.5 <= gap <= 1.3 * longest / 0.5 + 0.3, (gap, first, longest)
    for r in slow:
        assert len(shared.wait_stored(r.id)) == 1  # each metered once, deferrals included
