"""The reservation part of the storage contract, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from jobbudget.domain.records import Reservation, SpendKey
from jobbudget.ports import Store

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
A = SpendKey("budget-a", date(2026, 11, 1))
B = SpendKey("budget-b", date(2026, 11, 1))


def _r(rid: str, amount: str, *keys: SpendKey, ttl: int = 60) -> Reservation:
    return Reservation(
        id=rid, tenant_id="acme", keys=keys, amount=Decimal(amount), expires_at=NOW + timedelta(seconds=ttl)
    )


def test_reserve_within_every_limit_and_exactly(store: Store) -> None:
    limits = [(A, Decimal("1.000000002")), (B, None)]
    assert store.reserve(_r("r1", "0.000000001", A, B), limits=limits, now=NOW)
    assert store.reserve(_r("r2", "1.000000001", A, B), limits=limits, now=NOW)
    assert not store.reserve(_r("r3", "0.000000001", A, B), limits=limits, now=NOW)  # one nano too many
    assert store.reserve(_r("r2", "1.000000001", A, B), limits=limits, now=NOW)  # idempotent
    totals = store.spend_totals([A, B], now=NOW)
    assert totals == [(Decimal(0), Decimal("1.000000002")), (Decimal(0), Decimal("1.000000002"))]
    assert store.count_reservations(now=NOW) == 2


def test_release_and_expiry_free_room(store: Store) -> None:
    limits = [(A, Decimal(1))]
    assert store.reserve(_r("r1", "1", A, ttl=30), limits=limits, now=NOW)
    assert not store.reserve(_r("r2", "1", A), limits=limits, now=NOW)
    assert store.release_reservation("r1") and not store.release_reservation("r1")
    assert store.reserve(_r("r2", "1", A, ttl=30), limits=limits, now=NOW)
    later = NOW + timedelta(seconds=31)
    assert store.spend_totals([A], now=later) == [(Decimal(0), Decimal(0))]
    assert store.count_reservations(now=later) == 0
    assert store.reserve(_r("r3", "1", A), limits=limits, now=later)  # the expired hold does not count
    assert store.expire_reservations(now=later + timedelta(seconds=3600)) >= 1
    assert store.count_reservations(now=later) == 0


def test_release_can_be_limited_to_a_tenant(store: Store) -> None:
    assert store.reserve(_r("r1", "1", A), limits=[(A, None)], now=NOW)
    assert not store.release_reservation("r1", tenant_id="globex")
    assert store.count_reservations(now=NOW) == 1
    assert store.release_reservation("r1", tenant_id="acme")
