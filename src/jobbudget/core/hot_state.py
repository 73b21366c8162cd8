"""The hot state: the numbers an admission decides with, as one strategy.

* :class:`LocalHotState`: this process's own spend (kept fresh from other processes'
  commits by the store's change feed, see :mod:`.spend_state`) and its own
  reservations;
* :class:`SharedHotState` (:mod:`.shared_hot_state`): spend and reservations every
  process shares, in Redis or in the database, with the failure mode, the outage
  logged once and the rebuild from the ledger in one place.

Callers never ask which one they have."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from ..counters.memory import BudgetState
from ..counters.reservations import LocalReservations
from ..domain.enforcement import EnforcementAction
from ..domain.money import ZERO
from ..domain.records import JobRecord, Reservation, SpendKey

__all__ = ["HotState", "LocalHotState", "Limits", "Undecided", "with_spend"]

#: (period, the most a reservation may take its spend to; None: no limit)
Limits = Sequence[tuple[SpendKey, Decimal | None]]


class Undecided(Exception):
    """The shared state is down and ``redis_failure_mode`` is fail_open or fail_closed."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.mode = mode

    def action(self) -> EnforcementAction:
        if self.mode == "fail_open":
            return EnforcementAction(type="allow", message="shared budget state unavailable: failing open")
        return EnforcementAction(type="block", message="shared budget state unavailable: failing closed")


class HotState(Protocol):
    """What admission, metering, budget administration and the live view need of
    the hot numbers."""

    #: every process reads the same numbers (Redis or the database)
    shared: bool

    def start(self) -> None:
        """Connect, and load the shared counters from the ledger if they have none."""
        ...

    def close(self) -> None: ...

    def up(self) -> bool:
        """Whether decisions read the shared numbers now (always True locally)."""
        ...

    def precheck(self) -> None:
        """Raise :class:`Undecided` when no decision can be made (shared state down,
        failure mode fail_open or fail_closed)."""
        ...

    def fresh(self, states: list[BudgetState], now: datetime) -> list[BudgetState]:
        """(Under the state lock.)  The states with spend including open reservations."""
        ...

    def reserve(
        self, states: list[BudgetState], reservation: Reservation, limits: Limits, now: datetime
    ) -> tuple[list[BudgetState], bool]:
        """(Under the state lock.)  ``fresh`` and, if no period passes its limit, hold
        ``reservation`` on all of them, atomically: the states as they were before
        the hold, and whether it was taken."""
        ...

    def release(self, reservation_id: str, *, tenant_id: str | None) -> bool: ...
    def open_reservations(self, now: datetime) -> int: ...

    def publish(
        self, records: Sequence[JobRecord], inserted: Sequence[bool], holds: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Add a committed batch's spend and drop the reservations it settles
        (reservation id, tenant), never raising: the ledger has the spend, and a hold
        left behind expires."""
        ...

    def retract(self, records: Sequence[JobRecord]) -> None:
        """Take back the spend of journaled jobs the ledger turned out to have already
        (never raises: a failure marks the counters for a rebuild)."""
        ...

    def seed(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        """Set periods' spend (a budget stored with its spend recounted)."""
        ...

    def adjust(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        """Add committed adjustments (node, period, signed amount) to the shared spend
        (never raises: a failure marks the counters for a rebuild)."""
        ...

    def spends(self, keys: Sequence[tuple[str, SpendKey]]) -> dict[SpendKey, Decimal]:
        """Every process's spend of these periods ({} when only this process's is known)."""
        ...

    def failed(self, exc: Exception) -> None:
        """A call to the shared numbers failed: raise, or note the outage."""
        ...

    def mark_dirty(self) -> None:
        """The counters may miss a commit: rebuild them at the next tick."""
        ...

    def rebuild(self) -> None:
        """Rebuild the counters from the ledger now (at the next tick if that fails)."""
        ...

    def tick(self) -> None:
        """Every second: notice an outage ending or lost counters, rebuild then."""
        ...

    def reconcile(self) -> None:
        """Compare the counters with the ledger and correct lasting differences."""
        ...


class LocalHotState:
    """This process's own spend and reservations."""

    shared = False

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock  # the spend state's: fresh and hold are called under it
        self.reservations = LocalReservations()

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def up(self) -> bool:
        return True

    def precheck(self) -> None:
        return None

    def fresh(self, states: list[BudgetState], now: datetime) -> list[BudgetState]:
        self.reservations.expire(now)
        if not len(self.reservations):
            return states
        out = []
        for state in states:
            held = self.reservations.held(state.key)
            out.append(state if not held else with_spend(state, state.spend + held))
        return out

    def reserve(
        self, states: list[BudgetState], reservation: Reservation, limits: Limits, now: datetime
    ) -> tuple[list[BudgetState], bool]:
        self.reservations.expire(now)
        spend = {s.key: s.spend for s in states}
        fresh = self.fresh(states, now)
        raw = [(key, spend.get(key, ZERO), limit) for key, limit in limits]
        return fresh, self.reservations.try_add(reservation, limits=raw)

    def release(self, reservation_id: str, *, tenant_id: str | None) -> bool:
        with self._lock:
            held = self.reservations.get(reservation_id)
            if held is None or tenant_id not in (None, held.tenant_id):
                return False
            self.reservations.pop(reservation_id)
            return True

    def open_reservations(self, now: datetime) -> int:
        with self._lock:
            self.reservations.expire(now)
            return len(self.reservations)

    def publish(
        self, records: Sequence[JobRecord], inserted: Sequence[bool], holds: Sequence[tuple[str, str]] = ()
    ) -> None:
        for reservation_id, tenant_id in holds:
            self.release(reservation_id, tenant_id=tenant_id)

    def retract(self, records: Sequence[JobRecord]) -> None:
        return None

    def adjust(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        return None

    def seed(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        return None

    def spends(self, keys: Sequence[tuple[str, SpendKey]]) -> dict[SpendKey, Decimal]:
        return {}

    def failed(self, exc: Exception) -> None:
        raise exc

    def mark_dirty(self) -> None:
        return None

    def rebuild(self) -> None:
        return None

    def tick(self) -> None:
        return None

    def reconcile(self) -> None:
        return None


def with_spend(state: BudgetState, spend: Decimal) -> BudgetState:
    """A copy of ``state`` with another spend (the index's own state is untouched)."""
    copy = BudgetState(state.budget, state.thresholds, state.window, spend)
    copy.valid_from, copy.valid_until = state.valid_from, state.valid_until
    return copy
