"""The hot state shared through the database alone (``shared_state: database``): no
Redis, every check reads the ledger's spend and the open reservations, and every
admission locks the budget periods' rows (see :mod:`jobbudget.storage.sql.reservations`).
Slower than Redis, exact all the same."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from ..domain.money import ZERO
from ..domain.records import Reservation, SpendKey
from ..ports import Store

__all__ = ["DatabaseSharedState"]


class DatabaseSharedState:
    def __init__(self, store: Store) -> None:
        self._store = store

    def totals(self, keys: Sequence[tuple[str, SpendKey]], *, now: datetime) -> list[Decimal]:
        return [spend + held for spend, held in self._store.spend_totals([k for _, k in keys], now=now)]

    def spends(self, keys: Sequence[tuple[str, SpendKey]]) -> list[Decimal]:
        return list(self._store.load_spend([k for _, k in keys]).get(k, ZERO) for _, k in keys)

    def reserve(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> bool:
        return self._store.reserve(reservation, limits=limits, now=now)

    def admit(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> tuple[bool, list[Decimal]]:
        totals = self.totals([(reservation.tenant_id, key) for key, _ in limits], now=now)
        return self.reserve(reservation, limits=limits, now=now), totals

    def settle(self, spend: Sequence[tuple[str, SpendKey, Decimal]], holds: Sequence[tuple[str, str]]) -> None:
        for reservation_id, tenant_id in holds:  # the ledger itself has the spend
            self.release(reservation_id, tenant_id=tenant_id)

    def release(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        return self._store.release_reservation(reservation_id, tenant_id=tenant_id)

    def add_spend(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        return None  # the ledger itself is the shared spend

    def load(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        return None

    def open_reservations(self, now: datetime) -> int:
        return self._store.count_reservations(now=now)
