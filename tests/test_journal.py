"""The metering journal (``metering_journal``): durable lines with checksums, a torn
tail skipped, a dead process's journal told from a live one by its ``flock``, and a
service that meters through it exactly (redeliveries taken back from Redis)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import POSTGRES_URL
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics, ValidationError
from jobbudget.domain.cost import CostCalculationEngine, CostModel
from jobbudget.domain.records import JobRecord, SpendKey
from jobbudget.storage.journal import FileJournal, read_records
from test_shared_state import REDIS_URL
from test_shared_state import prefix as prefix  # the fixture

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
RECENT = datetime.now(UTC).replace(microsecond=0)


def _metrics(job_id: str, cpu: str = "12.5", tenant: str = "acme", at: datetime = NOW) -> JobMetrics:
    return JobMetrics(
        job_id=job_id,
        tenant_id=tenant,
        queue_name="q",
        cpu_time=Decimal(cpu),
        memory_mb_seconds=Decimal("1024.5"),
        payload_bytes=10,
        redis_ops=3,
        network_bytes=4096,
        job_type="etl",
        priority=7,
        timestamp=at,
    )


def _record(job_id: str) -> JobRecord:
    m = _metrics(job_id)
    cost = CostCalculationEngine(CostModel()).calculate_job_cost(m, timestamp=NOW)
    keys = (SpendKey("b1", date(2026, 12, 1)), SpendKey("b2", date(2026, 12, 1)))
    return JobRecord(metrics=m, cost=cost, timestamp=NOW, day=NOW.date(), spend_keys=keys)


def test_records_come_back_exactly(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    journal.open()
    records = [_record(f"j{i}") for i in range(3)]
    journal.append(records)
    (path,) = tmp_path.glob("journal-*.log")
    back = read_records(path)
    assert [r.metrics for r in back] == [r.metrics for r in records]
    assert [r.cost for r in back] == [r.cost for r in records]
    assert [r.spend_keys for r in back] == [r.spend_keys for r in records]
    journal.close()


def test_a_torn_or_damaged_tail_is_skipped(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    journal.open()
    journal.append([_record("a"), _record("b")])
    (path,) = tmp_path.glob("journal-*.log")
    with path.open("ab") as f:
        f.write(b'0badc0de {"t":"acme"')  # killed mid-write: never acknowledged
    assert [r.metrics.job_id for r in read_records(path)] == ["a", "b"]
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"j":"b"', b'"j":"c"')  # a line whose checksum no longer matches
    path.write_bytes(b"\n".join(lines))
    assert [r.metrics.job_id for r in read_records(path)] == ["a"]
    journal.close()


def test_a_live_journal_is_left_alone_and_a_dead_ones_replayed(tmp_path: Path) -> None:
    live, other = FileJournal(tmp_path), FileJournal(tmp_path)
    live.open()
    other.open()
    live.append([_record("x"), _record("y")])
    assert list(other.abandoned()) == []  # its flock is held
    assert live._fd is not None
    os.close(live._fd)  # as the kernel does when the process dies
    live._fd = None
    (found,) = list(other.abandoned())
    assert [r.metrics.job_id for r in found.records] == ["x", "y"]
    found.done()
    assert len(list(tmp_path.glob("journal-*.log"))) == 1  # only the live one's own file
    other.close()
    assert list(tmp_path.glob("journal-*.log")) == []  # empty at close: removed


def test_applied_empties_only_what_was_drained(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    journal.open()
    first = journal.append([_record("a")])
    journal.append([_record("b")])  # appended after the drain took its batch
    journal.applied(first)
    (path,) = tmp_path.glob("journal-*.log")
    assert len(read_records(path)) == 2  # kept: "b" is not in the ledger yet
    journal.applied(journal.append([_record("c")]))
    assert path.stat().st_size == 0
    journal.close()


def test_a_rotated_file_stays_locked_until_drained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobbudget.storage import journal as module

    monkeypatch.setattr(module, "ROTATE_BYTES", 10)
    mine, other = FileJournal(tmp_path), FileJournal(tmp_path)
    mine.open()
    other.open()
    mine.append([_record("a")])
    last = mine.append([_record("b")])  # past 10 bytes: "b" starts a new file
    assert len(list(tmp_path.glob("journal-*.log"))) == 3
    assert list(other.abandoned()) == []  # the rotated file is still this live process's
    mine.applied(last)
    assert len(list(tmp_path.glob("journal-*.log"))) == 2  # drained: removed
    mine.close()
    other.close()


def test_the_journal_needs_redis(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        BudgetService(Config(database_url=f"sqlite:///{tmp_path / 'j.db'}", metering_journal=tmp_path / "j"))
    assert caught.value.field == "metering_journal" and "Redis" in str(caught.value)


def test_metering_through_the_journal_is_exact(tmp_path: Path, pg_schema: str, prefix: str) -> None:
    """Journaled jobs reach the ledger; a redelivery counts once in the ledger and in
    Redis (its provisional spend taken back); reservations settle at once."""
    config = Config(
        database_url=POSTGRES_URL,
        database_schema=pg_schema,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        metering_journal=tmp_path / "journal",
        notifications_in_background=False,
    )
    with BudgetService(config) as service:
        budget = service.create_budget(Budget(tenant_id="acme", amount=Decimal(1000), period=BudgetPeriod("monthly")))
        assert budget.id is not None
        held = service.admit("acme", "q", estimated_cost=Decimal(5))
        first = service.process_job_cost(_metrics("j1", "100", at=RECENT), reservation_id=held.reservation_id)
        assert service.open_reservations() == 0  # settled at once, not at the drain
        again = service.process_job_cost(_metrics("j1", "100", at=RECENT))  # redelivered before the drain ran
        assert again.total_cost == first.total_cost
        service.process_job_cost(_metrics("j2", "50", at=RECENT))
        drain = service.core.drain
        assert drain is not None
        drain.flush()
        service.process_job_cost(_metrics("j2", "50", at=RECENT))  # redelivered after the drain ran
        drain.flush()
        second = service.get_job_cost("acme", "j2")
        assert second is not None
        expected = first.total_cost + second.total_cost
        key = service.core.spend.index.get(budget.id)
        assert key is not None and key.key is not None
        assert service.core.store.load_spend([key.key])[key.key] == expected
        assert service.core.hot.spends([("acme", key.key)])[key.key] == expected
        assert service.get_budget_status(budget.id).current_spend == expected
    assert [p.stat().st_size for p in (tmp_path / "journal").glob("journal-*.log")] == []
