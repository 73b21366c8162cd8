"""What the live WebSocket (``/v1/ws``) asks :class:`jobbudget.service.BudgetService`,
so that following budgets costs nothing while nothing happens.

* :meth:`LiveMixin.live_version`: O(1), whether anything a budget's status depends on
  may have changed since the last call (this process's spend state, its rebuilds, and
  other processes' commits through the store's change feed).
* :meth:`LiveMixin.live_marks`: per budget, O(1) from the in-memory state, a
  :class:`BudgetMark` of what its status is computed from (the budget's version, its
  period, its spend): while a budget's mark is unchanged, so is its status, except
  for what time alone changes, which :attr:`LiveMarks.wake_at` tells (a period roll,
  the end of a grace period).

With a shared state (Redis or the database) the spend of the marks is read from it
in one batch, as :meth:`get_budget_status` does one budget at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from .counters.memory import BudgetState, SpendIndex
from .domain.errors import StorageUnavailableError
from .domain.money import ZERO
from .domain.records import SpendKey
from .ports import ChangeFeed, SharedState, Store

__all__ = ["BudgetMark", "LiveMarks", "LiveMixin", "LiveVersion"]

_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LiveVersion:
    """Equal versions: no budget, period or spend changed in between."""

    index: int  # the spend state in use (a rebuild makes a new one)
    changes: int  # changes made to it by this process
    commits: int  # other processes' commits seen


@dataclass(frozen=True, slots=True)
class BudgetMark:
    """What a budget's status is computed from.  ``tracked`` is False for a budget the
    service does not enforce now (inactive or unknown): its status is read from the
    store, and its mark never changes."""

    tracked: bool
    updated_at: datetime | None = None
    period_start: date | None = None
    spend: Decimal = ZERO


UNTRACKED = BudgetMark(tracked=False)


@dataclass(frozen=True, slots=True)
class LiveMarks:
    marks: dict[str, BudgetMark] = field(default_factory=dict)
    #: the first instant at which time alone may change a status (a period ends or
    #: starts, a grace period ends); marks must be read again then
    wake_at: datetime = _NEVER


class LiveMixin:
    """Mixed into BudgetService (which sets the attributes declared here)."""

    _store: Store
    _index: SpendIndex
    _generation: int
    _write: threading.RLock
    _state: threading.Lock
    _shared: SharedState | None
    _shared_down: bool
    _live_feed: ChangeFeed | None = None
    _live_commits: int = 0

    if TYPE_CHECKING:  # provided by BudgetService and SharedMixin

        def _now(self) -> datetime: ...
        def _look_for_changes(self) -> None: ...
        def _stale(self, states: Sequence[BudgetState]) -> bool: ...
        def _resync(self, states: Sequence[BudgetState]) -> None: ...
        def _load_spend(self, key: SpendKey) -> Decimal: ...
        def _shared_failed(self, exc: Exception) -> None: ...

    def live_version(self) -> LiveVersion:
        """O(1): changes whenever a budget, a period or a spend may have changed (by
        this process or, through the store's change feed, by another one)."""
        if self._shared is None:
            self._look_for_changes()
            commits = self._generation
        else:  # checks read the shared state, not the feed: the live view has its own
            if self._live_feed is None:
                self._live_feed = self._store.changes()
            if self._live_feed.changed():
                self._live_commits += 1
            commits = self._live_commits
        index = self._index
        return LiveVersion(index.serial, index.changes, commits)

    def live_marks(self, budget_ids: Sequence[str]) -> LiveMarks:
        """The marks of ``budget_ids`` now (O(1) each from memory; a period that has
        ended is rolled and, after other processes' commits, the spend re-read from the
        ledger, in one query for all of them)."""
        now = self._now()
        if self._shared is None:
            self._look_for_changes()
        with self._state:
            states = [self._index.get(i) for i in budget_ids]
            tracked = [s for s in states if s is not None]
            if not self._stale(tracked) and all(s.current_at(now) for s in tracked):
                snapshot = [None if s is None else replace(s) for s in states]
            else:
                snapshot = None
        if snapshot is None:
            with self._write, self._state:
                states = [self._index.get(i) for i in budget_ids]
                tracked = [s for s in states if s is not None]
                for each in tracked:
                    self._index.roll(each, now, self._load_spend)
                self._resync(tracked)
                snapshot = [None if s is None else replace(s) for s in states]
        spend = self._shared_spends(snapshot)
        marks: dict[str, BudgetMark] = {}
        wake_at = _NEVER
        for budget_id, found in zip(budget_ids, snapshot, strict=True):
            if found is None:
                marks[budget_id] = UNTRACKED
                continue
            state = found
            key = state.key
            marks[budget_id] = BudgetMark(
                tracked=True,
                updated_at=state.budget.updated_at,
                period_start=key.period_start if key else None,
                spend=spend.get(key, state.spend) if key else state.spend,
            )
            wake_at = min(wake_at, state.valid_until)
            grace = state.thresholds.grace_until
            if grace is not None and grace > now:
                wake_at = min(wake_at, grace)
        return LiveMarks(marks, wake_at)

    def _shared_spends(self, states: Sequence[BudgetState | None]) -> dict[SpendKey, Decimal]:
        """Every process's spend of these budgets' periods, when there is a shared state."""
        shared = self._shared
        if shared is None or self._shared_down:
            return {}
        keys = [(s.budget.tenant_id, s.key) for s in states if s is not None and s.key is not None]
        if not keys:
            return {}
        try:
            values = shared.spends(keys)
        except StorageUnavailableError as exc:
            self._shared_failed(exc)
            return {}
        return {key: value for (_, key), value in zip(keys, values, strict=True)}
