"""The in-memory store's reservations (same contract as the SQL one)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from ..domain.money import ZERO
from ..domain.records import Reservation, SpendKey

__all__ = ["MemoryReservations"]


class MemoryReservations:
    _lock: threading.RLock
    _spend: dict[SpendKey, Decimal]

    def _reservations_init(self) -> None:
        self._holds: dict[str, Reservation] = {}

    def _open(self, key: SpendKey, now: datetime) -> Decimal:
        return sum((r.amount for r in self._holds.values() if key in r.keys and r.expires_at > now), ZERO)

    def reserve(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> bool:
        with self._lock:
            if reservation.id in self._holds:
                return True
            for key, limit in limits:
                if limit is not None and self._spend.get(key, ZERO) + self._open(key, now) + reservation.amount > limit:
                    return False
            self._holds[reservation.id] = reservation
            return True

    def release_reservation(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        with self._lock:
            held = self._holds.get(reservation_id)
            if held is None or (tenant_id is not None and held.tenant_id != tenant_id):
                return False
            del self._holds[reservation_id]
            return True

    def spend_totals(self, keys: Sequence[SpendKey], *, now: datetime) -> list[tuple[Decimal, Decimal]]:
        with self._lock:
            return [(self._spend.get(k, ZERO), self._open(k, now)) for k in keys]

    def count_reservations(self, *, now: datetime) -> int:
        with self._lock:
            return sum(1 for r in self._holds.values() if r.expires_at > now)

    def expire_reservations(self, *, now: datetime) -> int:
        with self._lock:
            due = [rid for rid, r in self._holds.items() if r.expires_at <= now]
            for rid in due:
                del self._holds[rid]
            return len(due)
