"""SQLite on a full disk and on a read-only database file, for real.

Disk full: a 4 MiB tmpfs mounted for the test and filled up with a file until the
kernel says ENOSPC (needs root and mount; skipped otherwise), and everywhere
``PRAGMA max_page_count`` (SQLite's own SQLITE_FULL, same code path).  Read-only:
``chattr +i`` on the database file, which even root cannot write through (its
directory stays writable, as for a 0444 file of another user).

Each fault must give a jobbudget error with a stable code (never a raw driver
exception), store nothing of the failed batch, leave the file intact (integrity
check, earlier data exact) and let writes succeed once the fault is gone.  The CLI
prints one ``error [CODE]: ...`` line and exits 1; the API answers 503 (with
Retry-After: a client that retries loses nothing) STORAGE_FULL or STORAGE_READ_ONLY as
JSON, without a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from conftest import POSTGRES_URL
from jobbudget import BudgetService, Config
from jobbudget.domain.budget import Budget
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.errors import (
    JobBudgetError,
    StorageError,
    StorageFullError,
    StorageReadOnlyError,
    is_retryable,
)
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.storage.sql.store import SqlStore
from test_api_support import error_of, job, make_api

pytestmark = pytest.mark.slow  # real faults: local runs may skip them with -m "not slow"; CI runs them
NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
DAY = NOW.date()
CLI = Path(sys.executable).with_name("jobbudget")


def jobs(prefix: str, count: int) -> list[JobMetrics]:
    return [
        JobMetrics(
            job_id=f"{prefix}-{i}",
            tenant_id="acme",
            queue_name="default",
            cpu_time=Decimal(i % 97) + Decimal("0.123456789"),
            memory_mb_seconds=Decimal(512),
            payload_bytes=Decimal(2048 + i),
            redis_ops=Decimal(100),
            network_bytes=Decimal(1_048_576),
            job_type="x" * 90,  # wide rows: the disk fills up quicker
        )
        for i in range(count)
    ]


def integrity_ok(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def job_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM job_costs").fetchone()[0])
    finally:
        conn.close()


def totals(service: BudgetService) -> tuple[int, Decimal]:
    """Jobs and spend of the day, read without writing (a full or read-only file)."""
    rows = service.get_daily_costs(start=DAY, end=DAY, exact_stats=False)
    return sum(r.total_jobs for r in rows), sum((r.total_cost for r in rows), Decimal(0))


def seeded(path: Path) -> tuple[BudgetService, str, tuple[int, Decimal]]:
    """A service on ``path`` with a budget and 50 stored jobs."""
    service = BudgetService(Config(database_url=f"sqlite:///{path}"), clock=lambda: NOW)
    budget = service.create_budget(Budget(tenant_id="acme", amount=Decimal(10**6), period=BudgetPeriod("monthly")))
    stored = service.process_job_costs(jobs("before", 50))
    before = totals(service)
    assert before == (50, sum((c.total_cost for c in stored), Decimal(0)))
    return service, str(budget.id), before


def assert_nothing_stored(service: BudgetService, budget_id: str, before: tuple[int, Decimal], prefix: str) -> None:
    assert totals(service) == before
    assert service.get_job_cost("acme", f"{prefix}-0") is None
    assert service.get_budget_status(budget_id).current_spend == before[1]  # memory not counted either
    service.resync()
    assert service.get_budget_status(budget_id).current_spend == before[1]


def assert_storage_error(err: JobBudgetError, cls: type[StorageError], code: str, words: str) -> None:
    assert type(err) is cls and err.code == code and not is_retryable(err)
    assert words in str(err) and "\n" not in str(err)
    assert isinstance(err.__cause__, Exception)  # the driver's error stays as the cause


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; delete it to free the space."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        with contextlib.suppress(OSError):  # the last few bytes
            while True:
                os.write(fd, b"\0")
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0
    return filler


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (``chattr +i``)."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not permitted here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def page_limit(store: SqlStore, extra_pages: int) -> None:
    """Cap the file at its current size plus ``extra_pages`` on every connection."""
    with store.engine.connect() as conn:
        limit = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()) + extra_pages

    def cap(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {limit}")

    event.listen(store.engine, "connect", cap)
    store.engine.dispose()  # pooled connections reconnect with the cap


def test_real_disk_full_on_a_tmpfs(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        db = disk / "jobbudget.db"
        service, budget_id, before = seeded(db)
        try:
            filler = fill(disk)
            with pytest.raises(StorageFullError) as caught:
                service.process_job_costs(jobs("during", 3000))
            assert_storage_error(caught.value, StorageFullError, "STORAGE_FULL", "database or disk is full")
            assert_nothing_stored(service, budget_id, before, "during")
            integrity_ok(db)
            filler.unlink()  # space is back: the same batch goes in, exactly once
            stored = service.process_job_costs(jobs("during", 3000))
            added = sum((c.total_cost for c in stored), Decimal(0))
            assert totals(service) == (before[0] + 3000, before[1] + added)
            assert service.get_budget_status(budget_id).current_spend == before[1] + added
        finally:
            service.close()
        integrity_ok(db)


def test_sqlite_full_at_its_page_limit(tmp_path: Path) -> None:
    db = tmp_path / "jobbudget.db"
    service, budget_id, before = seeded(db)
    service.close()
    store = SqlStore(f"sqlite:///{db}")
    page_limit(store, extra_pages=5)
    with BudgetService(Config(database_url=f"sqlite:///{db}"), clock=lambda: NOW, store=store) as service:
        with pytest.raises(StorageFullError) as caught:
            service.process_job_costs(jobs("during", 3000))
        assert_storage_error(caught.value, StorageFullError, "STORAGE_FULL", "database or disk is full")
        assert_nothing_stored(service, budget_id, before, "during")
        integrity_ok(db)
        api = make_api_after(service)  # the API: 503 with a stable code, no traceback
        r = api.post("/v1/jobs", json={"jobs": [job(f"api-{i}", job_type="y" * 90) for i in range(3000)]})
        assert r.status_code == 503 and error_of(r)["code"] == "STORAGE_FULL", r.text
        assert r.headers["Retry-After"]
        assert "Traceback" not in r.text and "sqlite" not in r.text.lower()
    integrity_ok(db)
    with BudgetService(Config(database_url=f"sqlite:///{db}"), clock=lambda: NOW) as service:  # no cap: it works
        service.process_job_costs(jobs("during", 3000))
        assert totals(service)[0] == before[0] + 3000


def make_api_after(service: BudgetService) -> Any:
    """The API over a service whose database no longer takes writes: its keys are
    made through a second, unlimited service on the same file first."""
    url = service.config.database_url
    with BudgetService(Config(database_url=url), clock=lambda: NOW) as keys_maker:
        api = make_api(keys_maker)
    api.client.app.state.service = service  # type: ignore[attr-defined]
    return api


def test_read_only_database_file(tmp_path: Path) -> None:
    db = tmp_path / "jobbudget.db"
    service, budget_id, before = seeded(db)
    service.close()
    with immutable(db), BudgetService(Config(database_url=f"sqlite:///{db}"), clock=lambda: NOW) as service:
        assert totals(service) == before  # reading still works
        with pytest.raises(StorageReadOnlyError) as caught:
            service.process_job_costs(jobs("during", 100))
        assert_storage_error(caught.value, StorageReadOnlyError, "STORAGE_READ_ONLY", "readonly database")
        assert_nothing_stored(service, budget_id, before, "during")
    integrity_ok(db)
    with BudgetService(Config(database_url=f"sqlite:///{db}"), clock=lambda: NOW) as service:  # writable again
        stored = service.process_job_costs(jobs("during", 100))
        assert totals(service) == (before[0] + 100, before[1] + sum((c.total_cost for c in stored), Decimal(0)))


def cli(db: Path, records: list[dict[str, Any]], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    metrics = tmp_path / "jobs.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    return subprocess.run(
        [str(CLI), "ingest", str(metrics), "--no-notify", "--database-url", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error [{code}]: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_cli_and_api_on_a_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "jobbudget.db"
    service, _budget_id, before = seeded(db)
    api = make_api(service)
    service.close()
    with immutable(db):
        assert_one_line_error(cli(db, [job(f"cli-{i}") for i in range(10)], tmp_path), "STORAGE_READ_ONLY")
        assert job_rows(db) == before[0]
        with BudgetService(Config(database_url=f"sqlite:///{db}"), clock=lambda: NOW) as service:
            api.client.app.state.service = service  # type: ignore[attr-defined]
            r = api.post("/v1/jobs", json=job("api-1"))
            assert r.status_code == 503 and error_of(r)["code"] == "STORAGE_READ_ONLY", r.text
            assert r.headers["Retry-After"]
            assert "read-only" in error_of(r)["message"] and "Traceback" not in r.text
            assert totals(service) == before
    integrity_ok(db)


def test_cli_on_a_full_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        db = disk / "jobbudget.db"
        service, _budget_id, before = seeded(db)
        service.close()
        filler = fill(disk)
        records = [job(f"cli-{i}", job_type="z" * 90) for i in range(3000)]
        assert_one_line_error(cli(db, records, tmp_path), "STORAGE_FULL")
        filler.unlink()
        integrity_ok(db)
        assert job_rows(db) == before[0]
        done = cli(db, records, tmp_path)
        assert done.returncode == 0, done.stderr
        assert job_rows(db) == before[0] + 3000
        integrity_ok(db)


def test_postgres_read_only_transactions_are_storage_read_only(pg_schema: str) -> None:
    """The same code on PostgreSQL (a standby, or ``default_transaction_read_only``)."""
    url = POSTGRES_URL
    with BudgetService(Config(database_url=url, database_schema=pg_schema), clock=lambda: NOW) as service:
        service.process_job_costs(jobs("before", 5))
    store = SqlStore(url, schema=pg_schema)

    def read_only(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = on")
        dbapi_conn.commit()

    event.listen(store.engine, "connect", read_only)
    config = Config(database_url=url, database_schema=pg_schema)
    with BudgetService(config, clock=lambda: NOW, store=store) as service:
        with pytest.raises(StorageReadOnlyError) as caught:
            service.process_job_costs(jobs("during", 20))
        assert_storage_error(caught.value, StorageReadOnlyError, "STORAGE_READ_ONLY", "read-only transaction")
        assert totals(service) == (5, totals(service)[1]) and service.get_job_cost("acme", "during-0") is None
