"""Fixtures of the queue integration tests: the local Redis (a unique key prefix or
queue per test), a shared SQLite database both the test and the workers open, and
budgets that block or throttle a tenant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import IN_CI
from jobbudget.config import Config
from jobbudget.domain.budget import Budget, EnforcementPolicy
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.service import BudgetService

REDIS_URL = os.environ.get("JOBBUDGET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# One key prefix per test run, set before the Celery app module is imported; each
# test then uses its own queue.
os.environ.setdefault("JOBBUDGET_IT_PREFIX", f"jbit-{uuid.uuid4().hex[:10]}:")
os.environ.setdefault("JOBBUDGET_IT_BROKER", REDIS_URL)


def require_redis() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    return client


@pytest.fixture
def redis_client() -> Iterator[Any]:
    client = require_redis()
    yield client
    client.close()


@dataclass
class Shared:
    """The database the test and the worker share, and a service on it."""

    url: str
    service: BudgetService
    markers: Path

    def marker(self, name: str) -> Path:
        return self.markers / f"{name}.jsonl"

    def runs(self, name: str) -> list[dict[str, float]]:
        path = self.marker(name)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def stored(self, job_id: str) -> list[dict[str, Any]]:
        """The stored rows of a job id (any tenant)."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("select * from job_costs where job_id = :j"), {"j": job_id})
                return [dict(r._mapping) for r in rows]
        finally:
            engine.dispose()

    def wait_runs(self, name: str, count: int, timeout: float = 30) -> list[dict[str, float]]:
        deadline = time.monotonic() + timeout
        while len(runs := self.runs(name)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return runs

    def wait_stored(self, job_id: str, timeout: float = 15) -> list[dict[str, Any]]:
        """The stored rows of a job, waiting for the first (a worker meters a job
        just after it reports the result)."""
        deadline = time.monotonic() + timeout
        while not (rows := self.stored(job_id)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return rows


def _spend(service: BudgetService, tenant: str, queue: str, amount: Decimal) -> None:
    """Record one job costing exactly ``amount`` (base 0.001 + CPU at 0.0001/s)."""
    cpu = (amount - Decimal("0.001")) / Decimal("0.0001")
    service.process_job_cost(
        JobMetrics(
            job_id=f"prespend-{uuid.uuid4()}",
            tenant_id=tenant,
            queue_name=queue,
            cpu_time=cpu,
            memory_mb_seconds=Decimal(0),
            payload_bytes=Decimal(0),
            redis_ops=Decimal(0),
            network_bytes=Decimal(0),
        )
    )


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Shared]:
    """Tenants: ``blocked`` (spent 100 % of 1 USD), ``throttled`` (spent 95 % of 100 USD, factor 0.5),
    ``free`` (no budget), ``urgent`` (spent 100 %, emergency priority 9 bypasses, with an
    allowance of the whole amount past the block threshold)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    service = BudgetService(Config(database_url=url, cost_model="seed"))  # the design document's prices
    for tenant, amount, spent in (("blocked", "1", "1"), ("throttled", "100", "95"), ("urgent", "1", "1")):
        policy = EnforcementPolicy(max_bypass_fraction=Decimal(1 if tenant == "urgent" else "0.1"))
        service.create_budget(
            Budget(tenant_id=tenant, amount=Decimal(amount), period=BudgetPeriod("monthly"), enforcement_policy=policy)
        )
        _spend(service, tenant, "setup", Decimal(spent))
    markers = tmp_path / "markers"
    markers.mkdir()
    yield Shared(url=url, service=service, markers=markers)
    service.close()


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "JOBBUDGET_NOTIFICATIONS_IN_BACKGROUND": "false", **extra}
    return env


def wait_for_log(proc: subprocess.Popen[bytes], log: Path, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)
    raise AssertionError(f"worker not ready after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
