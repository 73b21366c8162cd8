"""A real ``rq worker`` (forking work horses, with its scheduler) on the local
Redis, with the budget service on a SQLite file the test shares with it."""

from __future__ import annotations

import itertools
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import IN_CI

if not IN_CI:  # in CI a missing queue library fails the run
    pytest.importorskip("rq")
from rq import Queue, Retry
from rq.job import Job, JobStatus

from integrations.conftest import BIN, REDIS_URL, ROOT, Shared, require_redis, stop, wait_for_log, worker_env
from integrations.rq_jobs import work
from jobbudget.integrations.rq import enqueue

pytestmark = pytest.mark.slow


@dataclass
class RQ:
    queue: Queue
    log: Path

    def send(self, shared: Shared, tenant: str, name: str, *, priority: int = 5, **kw: Any) -> Job:
        extra = {k: kw.pop(k) for k in ("job_id", "retry") if k in kw}
        args = (str(shared.marker(name)),)
        return enqueue(self.queue, work, tenant_id=tenant, priority=priority, args=args, kwargs=kw, **extra)

    def wait(self, job: Job, timeout: float = 30) -> JobStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = job.get_status(refresh=True)
            if status in (JobStatus.FINISHED, JobStatus.FAILED):
                return status
            time.sleep(0.05)
        raise AssertionError(f"job {job.id} still {job.get_status()}:\n{self.log.read_text()[-3000:]}")


@pytest.fixture
def rq(shared: Shared, tmp_path: Path) -> Iterator[RQ]:
    client = require_redis()
    name = f"jbit-{uuid.uuid4().hex[:10]}"
    queue = Queue(name, connection=client)
    log = tmp_path / "rq.log"
    cmd = [str(BIN / "rq"), "worker", "-u", REDIS_URL, "-w", "integrations.rq_jobs.BudgetWorker"]
    cmd += ["--with-scheduler", "--logging_level", "DEBUG", name]
    env = worker_env(JOBBUDGET_IT_DB=shared.url)
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_log(proc, log, "Listening on")
        yield RQ(queue, log)
    finally:
        stop(proc)
        queue.empty()
        queue.delete(delete_jobs=True)
        client.close()


def test_blocked_tenant_is_refused_and_never_runs(rq: RQ, shared: Shared) -> None:
    refused = rq.send(shared, "blocked", "blocked", cpu=0.05, retry=Retry(max=2))
    ran = rq.send(shared, "free", "free", cpu=0.05)
    assert rq.wait(ran) == JobStatus.FINISHED
    assert rq.wait(refused) == JobStatus.FAILED
    refused.refresh()
    assert "BudgetBlocked" in (refused.latest_result().exc_string or "")  # type: ignore[union-attr]
    assert refused.id in rq.queue.failed_job_registry.get_job_ids()
    after = rq.send(shared, "free", "after", cpu=0.01)  # one worker, in order: a retry would have run first
    assert rq.wait(after) == JobStatus.FINISHED
    assert not shared.marker("blocked").exists()  # not retried
    assert shared.stored(refused.id) == []
    assert len(shared.wait_stored(ran.id)) == 1


def test_emergency_priority_passes_a_block(rq: RQ, shared: Shared) -> None:
    job = rq.send(shared, "urgent", "urgent", priority=9)
    assert rq.wait(job) == JobStatus.FINISHED
    assert shared.wait_stored(job.id)[0]["priority"] == 9


def test_cpu_and_memory_are_metered(rq: RQ, shared: Shared) -> None:
    busy = rq.send(shared, "free", "busy", cpu=0.2)
    mem = rq.send(shared, "free", "mem", mb=50, hold=0.5)
    rq.wait(busy)
    rq.wait(mem)
    (row,) = shared.wait_stored(busy.id)
    assert Decimal("0.1") <= Decimal(row["cpu_time"]) <= Decimal("0.5")
    assert row["tenant_id"] == "free" and row["queue_name"] == rq.queue.name
    assert row["job_type"] == "integrations.rq_jobs.work"
    assert Decimal(row["payload_bytes"]) > 0
    (mrow,) = shared.wait_stored(mem.id)
    assert Decimal(25) <= Decimal(mrow["memory_mb_seconds"]) <= Decimal(300), mrow["memory_mb_seconds"]


def test_redelivered_and_retried_jobs_are_metered_once(rq: RQ, shared: Shared) -> None:
    job_id = str(uuid.uuid4())
    first = rq.send(shared, "free", "twice", job_id=job_id, cpu=0.02)
    rq.wait(first)
    rq.send(shared, "free", "twice", job_id=job_id, cpu=0.02)  # the same job delivered again
    assert len(shared.wait_runs("twice", 2)) == 2
    retried = rq.send(shared, "free", "retried", fail=True, retry=Retry(max=2))  # 1 + 2 runs, one id
    assert len(shared.wait_runs("retried", 3)) == 3
    assert rq.wait(retried) == JobStatus.FAILED
    after = rq.send(shared, "free", "after", cpu=0.01)  # one worker: metered after every earlier job
    assert rq.wait(after) == JobStatus.FINISHED and len(shared.wait_stored(after.id)) == 1
    assert len(shared.wait_stored(job_id)) == 1
    assert len(shared.wait_stored(retried.id)) == 1


def _start_gaps(runs: list[dict[str, float]]) -> tuple[float, float, float]:
    """Mean gap between start times; the first run's duration (the pacer spaces the
    slots it reserves by it); the longest duration."""
    runs = sorted(runs, key=lambda r: r["start"])
    gaps = [b["start"] - a["start"] for a, b in itertools.pairwise(runs)]
    durations = [r["end"] - r["start"] for r in runs]
    return sum(gaps) / len(gaps), durations[0], max(durations)


def test_throttled_tenant_is_paced_by_the_factor(rq: RQ, shared: Shared) -> None:
    n = 3
    jobs = [rq.send(shared, "throttled", "throttled", cpu=0.6) for _ in range(n)]
    for job in jobs:
        assert rq.wait(job, timeout=60) == JobStatus.FINISHED
    gap, first, longest = _start_gaps(shared.runs("throttled"))
    # factor 0.5: start times d / 0.5 apart; the scheduler re-enqueues within whole seconds
    assert 0.85 * first / 0.5 <= gap <= longest / 0.5 + 2.0, (gap, first, longest)
    # all but the first were moved to the scheduled registry once
    assert sum(1 for job in jobs if job.get_meta(refresh=True).get("jobbudget_deferred")) == n - 1
    for job in jobs:
        assert len(shared.wait_stored(job.id)) == 1


def test_a_job_without_a_tenant_fails_and_the_worker_goes_on(rq: RQ, shared: Shared) -> None:
    bare = rq.queue.enqueue(work, str(shared.marker("bare")))  # not through jobbudget's enqueue
    after = rq.send(shared, "free", "after")
    assert rq.wait(bare) == JobStatus.FAILED
    assert "no tenant" in (bare.latest_result().exc_string or "")  # type: ignore[union-attr]
    assert rq.wait(after) == JobStatus.FINISHED
    assert not shared.marker("bare").exists()
