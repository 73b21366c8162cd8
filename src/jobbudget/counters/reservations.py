"""Open reservations held in this process (the single-process hot state): the
estimated cost of admitted jobs that have not been metered yet, per budget period.
Not thread-safe on its own: the service holds its state lock around every call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from ..domain.money import ZERO
from ..domain.records import Reservation, SpendKey

__all__ = ["LocalReservations"]


class LocalReservations:
    def __init__(self) -> None:
        self._by_id: dict[str, Reservation] = {}
        self._held: dict[SpendKey, Decimal] = {}
        self._next_expiry: datetime | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, reservation_id: str) -> Reservation | None:
        return self._by_id.get(reservation_id)

    def held(self, key: SpendKey | None) -> Decimal:
        """The total reserved against ``key`` (a budget period)."""
        return self._held.get(key, ZERO) if key is not None else ZERO

    def try_add(self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal, Decimal | None]]) -> bool:
        """Hold ``reservation`` if, for every (key, spend, limit) with a limit,
        spend + held + amount stays within the limit.  Idempotent by id."""
        if reservation.id in self._by_id:
            return True
        for key, spend, limit in limits:
            if limit is not None and spend + self.held(key) + reservation.amount > limit:
                return False
        self._by_id[reservation.id] = reservation
        for key in reservation.keys:
            self._held[key] = self._held.get(key, ZERO) + reservation.amount
        if self._next_expiry is None or reservation.expires_at < self._next_expiry:
            self._next_expiry = reservation.expires_at
        return True

    def pop(self, reservation_id: str) -> Reservation | None:
        """Remove a reservation (settled or released); None if it is not held."""
        reservation = self._by_id.pop(reservation_id, None)
        if reservation is None:
            return None
        for key in reservation.keys:
            left = self._held.get(key, ZERO) - reservation.amount
            if left > 0:
                self._held[key] = left
            else:
                self._held.pop(key, None)
        return reservation

    def expire(self, now: datetime) -> list[Reservation]:
        """Release every reservation whose time is up (cheap when none is due)."""
        if self._next_expiry is None or now < self._next_expiry:
            return []
        due = [r.id for r in self._by_id.values() if r.expires_at <= now]
        released = [r for r in (self.pop(rid) for rid in due) if r is not None]
        self._next_expiry = min((r.expires_at for r in self._by_id.values()), default=None)
        return released
