"""In-process spend state: every active budget with its current period and spend.

Admission checks read only this (no SQL per check).  It is rebuilt from the
``budget_spend`` ledger at start, kept current on every ingest, and a budget whose
period has ended rolls into the next one on the first check after the boundary.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..domain.budget import Budget
from ..domain.enforcement import Thresholds
from ..domain.hierarchy import TenantTree
from ..domain.money import ZERO
from ..domain.periods import PeriodWindow, first_window, window_at
from ..domain.records import SpendKey

__all__ = ["BudgetState", "SpendIndex"]

#: Loads the stored spend of one budget period (used when a period rolls over).
SpendLoader = Callable[[SpendKey], Decimal]


_FOREVER = datetime.max.replace(tzinfo=UTC)
_NEVER = datetime.min.replace(tzinfo=UTC)
_SERIALS = itertools.count(1)


@dataclass(slots=True)
class BudgetState:
    """One active budget: its current period window (None when not in force) and the
    spend in it.  ``valid_from``/``valid_until`` bound the instants for which that
    window assignment holds, so a check knows without date arithmetic when to roll."""

    budget: Budget
    thresholds: Thresholds
    window: PeriodWindow | None
    spend: Decimal = ZERO
    valid_from: datetime = _NEVER
    valid_until: datetime = _NEVER  # until bounded: not current, so the first check rolls
    #: the change generation at which ``spend`` was last read from the ledger (-1: never;
    #: the service re-reads it when another writer committed since)
    synced: int = -1
    #: what the period's amount has beyond the stored one: carried over from the
    #: previous period (negative: an overage) and raised for now; ``budget.amount``
    #: here is the amount in force (stored + carried + raised)
    carried: Decimal = ZERO
    raised: Decimal = ZERO
    #: the budget as stored (``budget`` holds the amount in force); None: the same
    base: Budget | None = None

    @property
    def stored(self) -> Budget:
        return self.base or self.budget

    @property
    def key(self) -> SpendKey | None:
        assert self.budget.id is not None
        return SpendKey(self.budget.id, self.window.start_date) if self.window else None

    def current_at(self, now: datetime) -> bool:
        """True when ``window`` is still the right one at ``now``."""
        return self.valid_from <= now < self.valid_until

    def bound(self, now: datetime) -> None:
        """Set the validity of ``window``, which is the window at ``now``."""
        if self.window is not None:
            self.valid_from, self.valid_until = self.window.start, self.window.end
            return
        first = first_window(self.budget.period)
        if now < first.start:  # not in force yet
            self.valid_from, self.valid_until = _NEVER, first.start
        else:  # a custom period that has ended: nothing more to roll into
            self.valid_from, self.valid_until = first.end, _FOREVER


class SpendIndex:
    """Active budgets by tenant and by (tenant, queue); not thread-safe on its own
    (the service serialises writers).

    ``serial`` tells this index from every other one built in the process, and
    ``changes`` counts what was done to it (a budget put or removed, spend added, a
    period rolled), so ``(serial, changes)`` is unchanged exactly while no budget,
    period or spend here changed (the live WebSocket compares it)."""

    def __init__(self, tree: TenantTree | None = None) -> None:
        self._by_id: dict[str, BudgetState] = {}
        self._tenant_wide: dict[str, list[BudgetState]] = {}
        self._by_queue: dict[tuple[str, str], list[BudgetState]] = {}
        self.serial = next(_SERIALS)
        self.changes = 0
        #: the organisation tree: a budget of a node covers the tenants below it
        self.tree = tree or TenantTree()
        #: budgets that select job labels, by node and by (node, queue): only a job
        #: that carries labels looks at them
        self._labelled: dict[str | tuple[str, str], list[BudgetState]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, budget_id: str) -> BudgetState | None:
        return self._by_id.get(budget_id)

    def states(self) -> list[BudgetState]:
        return list(self._by_id.values())

    def put(self, budget: Budget, *, window: PeriodWindow | None, spend: Decimal, now: datetime) -> BudgetState:
        """Track ``budget`` with ``window`` (its window at ``now``) and that window's spend."""
        assert budget.id is not None
        self.remove(budget.id)
        self.changes += 1
        state = BudgetState(budget, Thresholds.of(budget), window, spend)
        state.bound(now)
        self._by_id[budget.id] = state
        self._bucket(budget, create=True).append(state)  # type: ignore[union-attr]
        return state

    def _bucket(self, b: Budget, *, create: bool = False) -> list[BudgetState] | None:
        key: str | tuple[str, str] = (b.tenant_id, b.queue_name) if b.queue_name else b.tenant_id
        if b.labels:
            table: dict[Any, list[BudgetState]] = self._labelled
        elif b.queue_name:
            table = self._by_queue
        else:
            table = self._tenant_wide
        return table.setdefault(key, []) if create else table.get(key)

    def remove(self, budget_id: str) -> None:
        state = self._by_id.pop(budget_id, None)
        if state is None:
            return
        self.changes += 1
        bucket = self._bucket(state.budget)
        if bucket is not None:
            bucket.remove(state)

    def covering(self, tenant_id: str, queue_name: str, labels: Mapping[str, str] | None = None) -> list[BudgetState]:
        """Budgets a job of this tenant and queue (with these labels) counts toward:
        the tenant's and every ancestor's, tenant-wide and for the queue; a budget
        that selects labels only when the job carries them all."""
        if self.tree:
            nodes = self.tree.lineage(tenant_id)
            found: list[BudgetState] = []
            for node in nodes:
                wide = self._tenant_wide.get(node)
                if wide:
                    found += wide
                queue = self._by_queue.get((node, queue_name))
                if queue:
                    found += queue
        else:
            nodes = (tenant_id,)
            wide = self._tenant_wide.get(tenant_id)
            queue = self._by_queue.get((tenant_id, queue_name))
            found = wide + queue if wide and queue else wide or queue or []
        if labels and self._labelled:
            found = list(found)
            for node in nodes:
                for key in (node, (node, queue_name)):
                    for state in self._labelled.get(key, ()):
                        if state.budget.matches(labels):
                            found.append(state)
        return found

    def spend_keys(
        self,
        tenant_id: str,
        queue_name: str,
        instant: datetime,
        ends: dict[tuple[str, date], date] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[SpendKey, ...]:
        """The budget periods a job finished at ``instant`` counts toward (their last
        days are added to ``ends`` when given)."""
        keys = []
        for state in self.covering(tenant_id, queue_name, labels):
            window = state.window
            if window is None or not window.start <= instant < window.end:
                window = window_at(state.budget.period, instant)
                if window is None:
                    continue
            assert state.budget.id is not None
            keys.append(SpendKey(state.budget.id, window.start_date))
            if ends is not None:
                ends[(state.budget.id, window.start_date)] = window.end_date
        return tuple(keys)

    def add(self, keys: tuple[SpendKey, ...], amount: Decimal) -> None:
        """Count ``amount`` toward each key that is a budget's current period."""
        for key in keys:
            state = self._by_id.get(key.budget_id)
            if state is not None and state.window is not None and state.window.start_date == key.period_start:
                state.spend += amount
                self.changes += 1

    def roll(self, state: BudgetState, now: datetime, load: SpendLoader) -> None:
        """Move ``state`` to the period containing ``now`` if it has left its own; the
        new period's spend comes from the ledger (``load``)."""
        if state.current_at(now):
            return
        new = window_at(state.budget.period, now)
        self.changes += 1
        if new != state.window:
            state.window = new
            state.spend = load(state.key) if new is not None and state.key is not None else ZERO
        state.bound(now)
