"""The in-memory spend of every budget period in force, and the two locks that
guard it.

Two locks, always taken in this order: ``write`` serialises everything that writes
the ledger or reshapes the spend state (ingest, budget changes, period rolls,
resyncs) and is held across database I/O; ``lock`` guards the in-memory numbers
for microseconds, and is all an admission check needs.

Without a shared state each process keeps its own spend; the store's change feed
says when another writer committed, and the budgets a decision reads are then
re-read from the ledger (``generation``: how many changes were seen)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from ..counters.memory import BudgetState, SpendIndex
from ..domain.adjustments import BudgetRaise, carried, raised
from ..domain.budget import Budget
from ..domain.enforcement import Thresholds
from ..domain.errors import StorageUnavailableError
from ..domain.hierarchy import TenantTree
from ..domain.money import NANO, ZERO
from ..domain.periods import PeriodWindow, previous_window, window_at
from ..domain.records import SpendKey
from ..ports import ChangeFeed, Ledger, PlatformStore

__all__ = ["SpendState"]

log = logging.getLogger("jobbudget")
T = TypeVar("T")
_FOREVER = datetime.max.replace(tzinfo=UTC)


def previous_key(budget: Budget, window: PeriodWindow | None) -> SpendKey | None:
    """The period before ``window`` of a budget that carries over (None: it does not,
    or there is none)."""
    if window is None or budget.enforcement_policy.carry_over == "none":
        return None
    before = previous_window(budget.period, window)
    return SpendKey(str(budget.id), before.start_date) if before is not None else None


class SpendState:
    """The spend index of the budgets in force, rebuilt from the ledger, rolled into
    new periods and (after other processes' commits) re-read when a decision needs it."""

    def __init__(self, ledger: Ledger, platform: PlatformStore | None = None) -> None:
        self._ledger = ledger
        self._platform = platform
        #: raises of each budget (they change its amount while in force)
        self.raises: dict[str, list[BudgetRaise]] = {}
        self.write = threading.RLock()
        self.lock = threading.Lock()
        self.index = SpendIndex()
        self.generation = 0
        self._changes: ChangeFeed | None = None
        #: called (under the write lock) with the windows in force after each rebuild
        self.on_reload: Callable[[list[PeriodWindow | None]], None] = lambda windows: None

    def follow(self, changes: ChangeFeed) -> None:
        """Watch ``changes`` for other writers' commits (only without a shared state)."""
        self._changes = changes
        self.look_for_changes()  # the first look: what the ledger says now is known

    @property
    def follows_changes(self) -> bool:
        return self._changes is not None

    def reload(self, now: datetime) -> None:
        """Rebuild the index from the ledger.  Holds the write lock throughout so that
        no batch can commit between reading the ledger and swapping the index."""
        with self.write:
            generation = self.generation  # read before the ledger: a later change stays a change
            budgets = self._ledger.list_budgets()
            tree = TenantTree()
            raises: dict[str, list[BudgetRaise]] = {}
            if self._platform is not None:
                tree = TenantTree.of(self._platform.load_tree())
                for r in self._platform.list_raises():
                    raises.setdefault(r.budget_id, []).append(r)
            self.raises = raises
            windows = {b.id: window_at(b.period, now) for b in budgets}
            keys = [SpendKey(str(b.id), w.start_date) for b in budgets if (w := windows[b.id]) is not None]
            before = {b.id: p for b in budgets if (p := previous_key(b, windows[b.id])) is not None}
            spend = self._ledger.load_spend([*keys, *before.values()])
            index = SpendIndex(tree)
            for b in budgets:
                w = windows[b.id]
                prev = before.get(b.id)
                current = spend.get(SpendKey(str(b.id), w.start_date), ZERO) if w else ZERO
                state = self.track(
                    index, b, window=w, spend=current, now=now, previous=spend.get(prev, ZERO) if prev else None
                )
                state.synced = generation
            self.on_reload(list(windows.values()))
            with self.lock:
                self.index = index
            log.debug("rebuilt spend state: %d active budgets", len(index))

    def track(
        self,
        index: SpendIndex,
        budget: Budget,
        *,
        window: PeriodWindow | None,
        spend: Decimal,
        now: datetime,
        previous: Decimal | None = None,
    ) -> BudgetState:
        """Put ``budget`` (as stored) in ``index`` with the amount in force at ``now``:
        plus what its previous period carries over (``previous``: that period's
        spend; None reads it when the budget carries over) and its raises in force."""
        state = index.put(budget, window=window, spend=spend, now=now)
        if self._varies(budget):
            self.reprice(state, now, previous)
        return state

    def _varies(self, budget: Budget) -> bool:
        """Whether the amount in force may differ from the stored one (rollover, raises)."""
        return budget.enforcement_policy.carry_over != "none" or str(budget.id) in self.raises

    def reprice(self, state: BudgetState, now: datetime, previous: Decimal | None = None) -> None:
        """Set the amount in force of ``state`` (in place: callers hold it) from its
        stored budget, its carry-over and its raises at ``now``."""
        base = state.stored
        carry, raised_now, until = self._terms(base, state.window, now, previous)
        amount = base.amount + carry + raised_now
        state.base = base
        state.budget = replace(base, amount=max(amount, NANO)) if amount != base.amount else base
        state.thresholds = Thresholds.of(state.budget)
        state.carried, state.raised = carry, raised_now
        if until < state.valid_until:  # a raise starts or ends first: re-price then
            state.valid_until = until
        self.index.changes += 1

    def _terms(
        self, budget: Budget, window: PeriodWindow | None, now: datetime, previous: Decimal | None
    ) -> tuple[Decimal, Decimal, datetime]:
        carry = ZERO
        policy = budget.enforcement_policy
        if window is not None and policy.carry_over != "none":
            if previous is None:
                key = previous_key(budget, window)
                previous = self.load_spend(key) if key is not None else None
            if previous is not None:
                carry = carried(
                    mode=policy.carry_over,
                    cap=policy.carry_over_cap,
                    amount=budget.amount,
                    previous_amount=budget.amount,
                    previous_spend=previous,
                )
        own = self.raises.get(str(budget.id), ())
        changes = [t for r in own for t in (r.starts_at, r.expires_at) if t > now]
        return carry, raised(own, now), min(changes, default=_FOREVER)

    def look_for_changes(self) -> None:
        """Ask the store whether another writer committed since the last look."""
        if self._changes is not None and self._changes.changed():
            self.generation += 1

    def stale(self, states: Sequence[BudgetState]) -> bool:
        return self._changes is not None and any(s.synced != self.generation for s in states)

    def resync(self, states: Sequence[BudgetState]) -> None:
        """(Under both locks.)  Re-read from the ledger the spend of the states another
        writer may have changed since they were last read.  If the database cannot be
        read, the spend this process knows stands."""
        generation = self.generation
        stale = [s for s in states if s.synced != generation]
        keys = [s.key for s in stale if s.key is not None]
        try:
            spend = self._ledger.load_spend(keys) if keys else {}
        except StorageUnavailableError as exc:
            log.debug("other processes' spend not read, deciding on this process's: %s", exc)
            return
        for state in stale:
            if state.key is not None:
                state.spend = spend.get(state.key, ZERO)
            state.synced = generation

    def ledger_spend(self, keys: Sequence[SpendKey]) -> dict[SpendKey, Decimal]:
        """The spend of these periods in the ledger now (every process's)."""
        return self._ledger.load_spend(keys)

    def load_spend(self, key: SpendKey) -> Decimal:
        return self._ledger.load_spend([key]).get(key, ZERO)

    def current(self, states: Sequence[BudgetState], now: datetime) -> bool:
        """(Under ``lock``.)  Whether the states can be decided on as they are."""
        return all(state.current_at(now) for state in states) and not self.stale(states)

    def bring_up_to_date(self, states: Sequence[BudgetState], now: datetime) -> None:
        """(Under both locks.)  Roll the states whose period ended, re-read those other
        processes changed (rare: that reads the ledger)."""
        for state in states:
            if state.current_at(now):
                continue
            self.index.roll(state, now, self.load_spend)
            if self._varies(state.stored):
                self.reprice(state, now)  # a new period carries over; a raise began or ended
        self.resync(states)

    def covering(
        self,
        tenant_id: str,
        queue_name: str,
        now: datetime,
        fn: Callable[[list[BudgetState]], T],
        labels: Mapping[str, str] | None = None,
    ) -> T:
        """Run ``fn`` under the state lock on the budgets covering the scope, current
        (rolled and re-read first when needed, under the write lock)."""
        self.look_for_changes()
        with self.lock:
            states = self.index.covering(tenant_id, queue_name, labels)
            if self.current(states, now):
                return fn(states)
        with self.write, self.lock:
            states = self.index.covering(tenant_id, queue_name, labels)
            self.bring_up_to_date(states, now)
            return fn(states)

    def snapshots(self, budget_ids: Sequence[str], now: datetime) -> list[BudgetState | None]:
        """Copies of the states of ``budget_ids`` now (None: not enforced)."""
        self.look_for_changes()
        with self.lock:
            states = [self.index.get(i) for i in budget_ids]
            tracked = [s for s in states if s is not None]
            if self.current(tracked, now):
                return [None if s is None else replace(s) for s in states]
        with self.write, self.lock:
            states = [self.index.get(i) for i in budget_ids]
            self.bring_up_to_date([s for s in states if s is not None], now)
            return [None if s is None else replace(s) for s in states]

    def all_states(self) -> list[BudgetState]:
        """Copies of every state, re-read first where other processes changed them."""
        self.look_for_changes()
        with self.lock:
            states = self.index.states()
            if not self.stale(states):
                return [replace(state) for state in states]
        with self.write, self.lock:
            states = self.index.states()
            self.resync(states)
            return [replace(state) for state in states]
