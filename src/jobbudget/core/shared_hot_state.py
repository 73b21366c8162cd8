"""The hot state shared by every process: Redis or the database.

The ledger in the database is the record.  Redis holds a hot copy that every process
reads at admission; a batch's spend is added to it right after the batch commits.
If Redis is unreachable, ``redis_failure_mode`` decides admissions (``local``: from
the ledger plus this process's reservations; ``fail_open``: allow; ``fail_closed``:
block), the outage is logged once and exported as
``jobbudget_shared_state_available``, and when Redis answers again the counters are
rebuilt from the ledger, so no job cost is lost.  With the database as the shared
state there is no failure mode: its errors are the caller's."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, cast

from ..counters.memory import BudgetState
from ..counters.reservations import LocalReservations
from ..domain.errors import JobBudgetError, StorageUnavailableError
from ..domain.money import ZERO
from ..domain.records import JobRecord, Reservation, SpendKey
from ..ports import Ledger, MetricsSink, SharedState
from .hot_state import Limits, Undecided, with_spend
from .spend_state import SpendState

__all__ = ["RECONCILE_AFTER_REBUILD", "RebuildableCounters", "SharedHotState"]

log = logging.getLogger("jobbudget")
#: Seconds after a rebuild of the Redis counters during which they are reconciled
#: with the ledger every second (otherwise every ``flush_interval``).
RECONCILE_AFTER_REBUILD = 30.0


class RebuildableCounters(SharedState, Protocol):
    """A shared state that can lose its data (Redis): rebuilt from the ledger."""

    def loaded(self) -> bool: ...
    def sweep(self, keys: Sequence[tuple[str, SpendKey]], *, now: datetime) -> int: ...
    def close(self) -> None: ...


class SharedHotState:
    """Spend and reservations shared through ``shared``; with ``failure_mode`` (Redis)
    an outage is survived as that mode says, and the counters rebuilt afterwards."""

    shared = True

    def __init__(
        self,
        connect: Callable[[], SharedState],
        *,
        spend: SpendState,
        ledger: Ledger,
        metrics: MetricsSink,
        clock: Callable[[], datetime],
        failure_mode: str | None,
    ) -> None:
        self._connect = connect
        self._state: SharedState | None = None
        self._spend = spend
        self._ledger = ledger
        self._metrics = metrics
        self._clock = clock
        self.failure_mode = failure_mode  # None: the database, no failure mode
        self.reservations = LocalReservations()  # held while Redis is down (mode local)
        self.down = False
        self.dirty = False
        self._drift_seen: dict[SpendKey, Decimal] = {}
        self._reconcile_often_until = 0.0  # after a rebuild, reconcile every second until then

    @property
    def state(self) -> SharedState:
        if self._state is None:
            raise RuntimeError("the shared state is not started")
        return self._state

    @property
    def counters(self) -> RebuildableCounters | None:
        """The Redis counters (None with the database, or before start)."""
        if self.failure_mode is None or self._state is None:
            return None
        return cast(RebuildableCounters, self._state)

    def start(self) -> None:
        self._state = self._connect()
        if self.failure_mode is None:
            return
        try:
            if not self._loaded():
                self.load()
            self._metrics.shared_state(available=True)
        except StorageUnavailableError as exc:
            self.failed(exc)

    def close(self) -> None:
        counters = self.counters
        if counters is not None:
            counters.close()

    def up(self) -> bool:
        return not self.down

    def precheck(self) -> None:
        if self.down and self.failure_mode != "local":
            raise Undecided(str(self.failure_mode))

    # -- decisions ------------------------------------------------------------------
    def fresh(self, states: list[BudgetState], now: datetime) -> list[BudgetState]:
        in_force = [s for s in states if s.key is not None]
        if not self.down:
            keys = [(s.budget.tenant_id, s.key) for s in in_force if s.key is not None]
            totals = self.state.totals(keys, now=now)
            return [with_spend(s, total) for s, total in zip(in_force, totals, strict=True)]
        # down, mode local: the ledger has every process's committed spend
        self.reservations.expire(now)
        periods = [s.key for s in in_force if s.key is not None]
        ledger = self._ledger.load_spend(periods)
        return [
            with_spend(s, ledger.get(key, ZERO) + self.reservations.held(key))
            for s, key in zip(in_force, periods, strict=True)
        ]

    def reserve(
        self, states: list[BudgetState], reservation: Reservation, limits: Limits, now: datetime
    ) -> tuple[list[BudgetState], bool]:
        in_force = [s for s in states if s.key is not None]
        if not self.down:  # atomically against the shared numbers, one round trip
            granted, totals = self.state.admit(reservation, limits=limits, now=now)
            return [with_spend(s, total) for s, total in zip(in_force, totals, strict=True)], granted
        fresh = self.fresh(in_force, now)
        spend = {s.key: s.spend for s in fresh}
        raw = [(key, spend[key] - self.reservations.held(key), limit) for key, limit in limits]
        return fresh, self.reservations.try_add(reservation, limits=raw)

    def release(self, reservation_id: str, *, tenant_id: str | None) -> bool:
        with self._spend.lock:
            held = self.reservations.get(reservation_id)
            local = held is not None and tenant_id in (None, held.tenant_id)
            if local:
                self.reservations.pop(reservation_id)
        if self.down:  # a shared one expires by itself
            return local
        try:
            return self.state.release(reservation_id, tenant_id=tenant_id) or local
        except StorageUnavailableError as exc:
            self.failed(exc)
            return local

    def open_reservations(self, now: datetime) -> int:
        with self._spend.lock:
            self.reservations.expire(now)
            local = len(self.reservations)
        return local if self.down else local + self.state.open_reservations(now)

    # -- the counters -----------------------------------------------------------------
    def publish(
        self, records: Sequence[JobRecord], inserted: Sequence[bool], holds: Sequence[tuple[str, str]] = ()
    ) -> None:
        local = self._release_local(holds)
        if self.down:
            self.dirty = True
            return
        totals: dict[tuple[str, SpendKey], Decimal] = {}
        for record, new in zip(records, inserted, strict=True):
            if new:
                for key in record.spend_keys:
                    pair = (self._node(key, record.metrics.tenant_id), key)
                    totals[pair] = totals.get(pair, ZERO) + record.cost.total_cost
        shared = [hold for hold in holds if hold[0] not in local]
        try:
            self.state.settle([(tenant, key, amount) for (tenant, key), amount in totals.items()], shared)
        except JobBudgetError as exc:
            if totals:
                self.dirty = True
            self.failed(exc)

    def _node(self, key: SpendKey, tenant_id: str) -> str:
        """Where the shared state keeps ``key``'s counters: its budget's node (a team's
        or an organisation's budget is one counter for all its tenants)."""
        state = self._spend.index.get(key.budget_id)
        return state.budget.tenant_id if state is not None else tenant_id

    def _release_local(self, holds: Sequence[tuple[str, str]]) -> set[str]:
        """Drop the holds taken while the shared state was down (mode local)."""
        released = set()
        with self._spend.lock:
            for reservation_id, tenant_id in holds:
                held = self.reservations.get(reservation_id)
                if held is not None and held.tenant_id == tenant_id:
                    self.reservations.pop(reservation_id)
                    released.add(reservation_id)
        return released

    def retract(self, records: Sequence[JobRecord]) -> None:
        if self.down:
            self.dirty = True
            return
        totals: dict[tuple[str, SpendKey], Decimal] = {}
        for record in records:
            for key in record.spend_keys:
                pair = (self._node(key, record.metrics.tenant_id), key)
                totals[pair] = totals.get(pair, ZERO) - record.cost.total_cost
        try:
            self.state.add_spend([(tenant, key, amount) for (tenant, key), amount in totals.items()])
        except JobBudgetError as exc:
            self.dirty = True
            self.failed(exc)

    def adjust(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        if self.down:
            self.dirty = True
            return
        try:
            self.state.add_spend(list(entries))
        except JobBudgetError as exc:
            self.dirty = True
            self.failed(exc)

    def seed(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        if self.down or not entries:
            return
        try:  # the recount, for every process (Redis; a no-op on the database)
            self.state.load(entries)
        except StorageUnavailableError as exc:
            self.failed(exc)

    def spends(self, keys: Sequence[tuple[str, SpendKey]]) -> dict[SpendKey, Decimal]:
        if self.down or not keys:
            return {}
        try:
            values = self.state.spends(keys)
        except StorageUnavailableError as exc:
            self.failed(exc)
            return {}
        return {key: value for (_, key), value in zip(keys, values, strict=True)}

    def failed(self, exc: Exception) -> None:
        """Logged once per outage, exported as a metric."""
        if self.failure_mode is None:
            raise exc
        if not self.down:
            log.warning(
                "shared budget state (Redis) unavailable, deciding admissions with redis_failure_mode=%s: %s",
                self.failure_mode,
                exc,
            )
            self._metrics.shared_state(available=False)
        self.down = True

    def mark_dirty(self) -> None:
        self.dirty = True

    def rebuild(self) -> None:
        if self.counters is None:
            return
        try:
            self.load()
        except JobBudgetError as exc:
            self.dirty = True
            self.failed(exc)

    # -- kept in step with the ledger (Redis) -----------------------------------------
    def ledger_entries(self) -> list[tuple[str, SpendKey, Decimal]]:
        """Every budget period in force, with its spend in the ledger now."""
        states = [s for s in self._spend.index.states() if s.key is not None]
        keys = [s.key for s in states if s.key is not None]
        spend = self._ledger.load_spend(keys)
        return [(s.budget.tenant_id, s.key, spend.get(s.key, ZERO)) for s in states if s.key is not None]

    def load(self) -> None:
        """(Re)build the counters from the ledger.  A batch another process commits
        while this runs can be overwritten (or counted twice), so the counters are
        reconciled every second for ``RECONCILE_AFTER_REBUILD`` seconds after it: a
        difference seen twice is corrected within about two seconds."""
        with self._spend.write:
            entries = self.ledger_entries()
        self.state.load(entries)
        self._reconcile_often_until = time.monotonic() + RECONCILE_AFTER_REBUILD
        log.info("loaded %d budget counters into Redis from the ledger", len(entries))

    def _loaded(self) -> bool:
        counters = self.counters
        return counters is None or counters.loaded()

    def tick(self) -> None:
        counters = self.counters
        if counters is None:
            return
        try:
            loaded = counters.loaded()
            if loaded and not self.down:
                periods = [(s.budget.tenant_id, s.key) for s in self._spend.index.states() if s.key is not None]
                counters.sweep(periods, now=self._clock())
            if self.down or self.dirty or not loaded:
                self.load()
                if self.down:
                    log.warning("shared budget state (Redis) is back; counters rebuilt from the ledger")
                elif not loaded:
                    log.warning("Redis had lost the budget counters; rebuilt from the ledger")
                self.down = self.dirty = False
                self._drift_seen = {}
                self._metrics.shared_state(available=True)
            elif time.monotonic() < self._reconcile_often_until:
                self.reconcile()
        except JobBudgetError as exc:
            self.failed(exc)

    def reconcile(self) -> None:
        """A difference seen twice in a row (not a batch in flight between its commit
        and its counter update, nor journaled jobs on their way to the ledger) is
        corrected and logged; the largest difference is exported every time."""
        if self.counters is None or self.down:
            return
        try:
            with self._spend.write:
                entries = self.ledger_entries()
            shared = self.state.spends([(t, k) for t, k, _ in entries])
        except JobBudgetError as exc:
            self.failed(exc)
            return
        seen: dict[SpendKey, Decimal] = {}
        worst = ZERO
        for (tenant, key, ledger), hot in zip(entries, shared, strict=True):
            drift = hot - ledger
            if not drift:
                continue
            worst = max(worst, abs(drift))
            if self._drift_seen.get(key) == drift:
                log.warning(
                    "Redis spend of budget %s period %s was off the ledger by %s twice in a row: corrected",
                    key.budget_id,
                    key.period_start,
                    drift,
                )
                try:
                    self.state.add_spend([(tenant, key, -drift)])
                except JobBudgetError as exc:
                    self.failed(exc)
                    return
            else:
                seen[key] = drift
        self._drift_seen = seen
        self._metrics.drift(amount=worst)
