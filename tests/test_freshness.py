"""Spend committed by another process counts at the next check, with no Redis and the
default configuration: SQLite by ``PRAGMA data_version``, PostgreSQL by LISTEN/NOTIFY.

Two services on one database stand for two processes here (each has its own
connections and its own copy of spend); ``tests/e2e/test_freshness.py`` does the same
with a real ``jobbudget serve`` and a real ``jobbudget ingest``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import POSTGRES_URL, require_postgres
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.storage.sql.changes import SqliteChanges

MONTH = BudgetPeriod("monthly")
PRICES = {"cpu_time_weight": "1", "base_job_weight": "0"}  # a job costs its CPU seconds in dollars


def job(job_id: str, dollars: int, tenant: str = "acme") -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id, tenant, "q", Decimal(dollars), zero, zero, zero, zero)


def pair(config: Config) -> Iterator[tuple[BudgetService, BudgetService]]:
    checker = BudgetService(config)
    writer = BudgetService(config)
    try:
        yield checker, writer
    finally:
        checker.close()
        writer.close()


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> Iterator[tuple[BudgetService, BudgetService]]:
    yield from pair(Config(database_url=f"sqlite:///{tmp_path / 'fresh.db'}", cost_model=PRICES))


@pytest.fixture
def postgres_pair(pg_schema: str) -> Iterator[tuple[BudgetService, BudgetService]]:
    require_postgres()
    yield from pair(Config(database_url=POSTGRES_URL, database_schema=pg_schema, cost_model=PRICES))


def test_the_default_keeps_spend_in_process(sqlite_pair: tuple[BudgetService, BudgetService]) -> None:
    checker, _ = sqlite_pair
    assert Config().shared_state == "auto" and not checker.shares_state


def test_sqlite_another_process_spend_counts_at_the_next_check(
    sqlite_pair: tuple[BudgetService, BudgetService],
) -> None:
    checker, writer = sqlite_pair
    checker.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=MONTH))
    writer.resync()  # the writer learns the budget (its watch does so within a second)
    assert checker.check_budget_compliance("acme", "q").type == "allow"
    writer.process_job_cost(job("big", 102))
    action = checker.check_budget_compliance("acme", "q")  # the very next check, no wait
    assert action.type == "block" and action.current_spend == Decimal(102)
    assert checker.get_budget_status(action.budget_id or "").current_spend == Decimal(102)
    # this process's own jobs still count once, on top of the other's
    checker.process_job_cost(job("small", 3))
    assert checker.check_budget_compliance("acme", "q").current_spend == Decimal(105)
    writer.process_job_cost(job("more", 1))
    assert checker.check_budget_compliance("acme", "q").current_spend == Decimal(106)
    assert [s.spend for s in checker.active_budget_states()] == [Decimal(106)]


def test_postgres_another_process_spend_counts_within_100_ms(
    postgres_pair: tuple[BudgetService, BudgetService],
) -> None:
    checker, writer = postgres_pair
    checker.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=MONTH))
    writer.resync()
    assert checker.check_budget_compliance("acme", "q").type == "allow"
    writer.process_job_cost(job("big", 102))
    committed = time.monotonic()
    while checker.check_budget_compliance("acme", "q").type != "block":
        assert time.monotonic() - committed < 0.1, "not seen within 100 ms"
        time.sleep(0.001)
    assert checker.check_budget_compliance("acme", "q").current_spend == Decimal(102)
    checker.process_job_cost(job("small", 3))  # its own notice is not a change to itself
    assert checker.check_budget_compliance("acme", "q").current_spend == Decimal(105)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_sqlite_feed_counts_only_other_writers_spend(tmp_path: Path, journal: str) -> None:
    """In WAL mode the feed reads the WAL-index header; otherwise ``data_version``.
    Either way only another writer's spend is a change: not a commit that leaves
    spend alone, not this process's own."""
    import sqlite3

    path = str(tmp_path / "v.db")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute(f"PRAGMA journal_mode={journal}")
    other.execute("CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    other.execute("CREATE TABLE t (x)")
    spend = "INSERT INTO store_meta VALUES ('spend_seq', '1') ON CONFLICT (key) DO UPDATE SET value = value + 1"
    feed = SqliteChanges(path)
    try:
        assert feed.changed()  # the first look: nothing was known
        assert not feed.changed()
        other.execute("INSERT INTO t VALUES (1)")  # a commit, but not of spend
        assert not feed.changed()
        other.execute(spend)
        assert feed.changed() and not feed.changed()
        other.execute("BEGIN")
        other.execute(spend)
        assert not feed.changed()  # not committed yet
        other.execute("COMMIT")
        assert feed.changed()
        other.execute(spend)  # sequence 3: "our own" commit, reported as such
        feed.own_commit(3)
        assert not feed.changed()
        other.execute(spend)  # 4: another writer's, then 5, our own, before anyone looked
        other.execute(spend)
        feed.own_commit(5)
        assert feed.changed() and not feed.changed()
    finally:
        feed.close()
        other.close()


LOCK_PROBE = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
# F_GETLK for a write lock on SQLite's "dead man switch" byte of the WAL index (offset 128):
# if another process holds a read lock there, the kernel says so (type F_RDLCK).
probe = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 128, 1, 0)
got = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
print(struct.unpack("hhqqi", got)[0] == fcntl.F_RDLCK)
"""


def test_a_feed_never_drops_sqlites_locks_on_the_wal_index(tmp_path: Path) -> None:
    """POSIX drops every lock a process holds on a file when any descriptor of it is
    closed: a feed that closed its view of ``-shm`` would release this process's SQLite
    locks, and another process would re-initialise the index under it."""
    import sqlite3
    import subprocess
    import sys

    path = str(tmp_path / "locks.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def held() -> bool:
        out = subprocess.run([sys.executable, "-c", LOCK_PROBE, f"{path}-shm"], capture_output=True, text=True)
        return out.stdout.strip() == "True"

    assert held()  # this process's connection holds the index open
    for _ in range(3):
        feed = SqliteChanges(path)
        feed.changed()
        feed.close()
        assert held()
    conn.close()
