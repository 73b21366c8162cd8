"""Admission on the database alone (``shared_state: database``) against a job settled
in the middle of it (found by CI: 8 processes admitted 101 one-dollar jobs against a
budget of 100, once in several runs, on PostgreSQL).

A job commits its spend, then its hold goes.  Read in two statements, an admission
could see the spend from before the commit and the holds from after the release, and
miss the job in both.  The test puts that settlement exactly between the admission's
reads, wherever they are, and the admission must still count the job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import POSTGRES_URL
from jobbudget.domain.records import Reservation, SpendKey
from jobbudget.storage.sql import reservations as module
from jobbudget.storage.sql.store import SqlStore

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
KEY = SpendKey("b-race", NOW.date().replace(day=1))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[SqlStore, sa.Engine]]:
    if request.param == "postgres":
        schema = request.getfixturevalue("pg_schema")
        made = SqlStore(POSTGRES_URL, schema=schema)
        other = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    else:
        url = f"sqlite:///{tmp_path / 'race.db'}"
        made = SqlStore(url)
        other = sa.create_engine(url)
    made.migrate()
    try:
        yield made, other
    finally:
        other.dispose()
        made.close()


def hold(store: SqlStore, name: str, amount: str = "1") -> bool:
    reservation = Reservation(name, "acme", (KEY,), Decimal(amount), NOW + timedelta(minutes=10))
    return store.reserve(reservation, limits=[(KEY, Decimal(2))], now=NOW)


def test_a_job_settled_between_the_reads_is_still_counted(
    store: tuple[SqlStore, sa.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    sql, other = store
    assert hold(sql, "first")  # 1 of 2 held
    with other.begin() as conn:  # 1 already spent (another process's shard)
        conn.execute(
            sa.text("INSERT INTO budget_spend (budget_id, period_start, shard, spend, jobs) VALUES (:b, :p, 3, 1, 1)"),
            {"b": KEY.budget_id, "p": KEY.period_start},
        )
    settled: list[bool] = []
    real = module.ReservationsMixin._held

    def held_after_a_settlement(self: Any, conn: Any, key: SpendKey) -> Decimal:
        if not settled:  # the first job commits its dollar, then its hold goes: now, mid-admission
            settled.append(True)
            if sql.dialect == "postgresql":
                with other.begin() as c:
                    c.execute(
                        sa.text(
                            "INSERT INTO budget_spend (budget_id, period_start, shard, spend, jobs) "
                            "VALUES (:b, :p, 7, 1, 1)"
                        ),
                        {"b": KEY.budget_id, "p": KEY.period_start},
                    )
                    c.execute(sa.text("DELETE FROM reservations WHERE id = 'first'"))
        return real(self, conn, key)

    monkeypatch.setattr(module.ReservationsMixin, "_held", held_after_a_settlement)
    # 2 spent (or 1 spent and 1 held): one dollar more would be 3 of 2
    assert hold(sql, "second") is False
    assert settled
